import { Command } from 'commander'

export function labCommand (): Command {
  return new Command('lab').description('network-namespace NAT lab (needs root)')
}
