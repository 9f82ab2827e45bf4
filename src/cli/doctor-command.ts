import { Command, InvalidArgumentError } from 'commander'
import { detectNat } from '../nat/detect.js'
import { formatReport, modeAdvice } from '../nat/describe.js'
import { gatewayStunServers } from '../nat/gateway-stun-servers.js'

function portList (value: string): number[] {
  const ports = value.split(',').map(item => item.trim())
  if (ports.length > 2 || ports.some(port => !/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw new InvalidArgumentError('expected one or two ports 1..65535, e.g. 3478,3479')
  }
  return ports.map(Number)
}

function positiveInteger (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer')
  return Number(value)
}

export function doctorCommand (): Command {
  return new Command('doctor')
    .description('detect this host\'s NAT type with the gateways\' STUN servers and say which modes will work')
    .requiredOption('--gateway <multiaddrs...>', 'gateway address(es); the STUN servers are at their IPs (a second gateway sharpens the mapping test)')
    .option('--stun-ports <ports>', 'the gateways\' STUN ports, primary and other', portList, [3478, 3479])
    .option('--timeout-ms <ms>', 'one STUN test\'s wait for its answer', positiveInteger, 1500)
    .option('--json', 'print the report as one JSON object')
    .action(async (options: { gateway: string[], stunPorts: number[], timeoutMs: number, json?: boolean }) => {
      let servers
      try {
        servers = gatewayStunServers(options.gateway, options.stunPorts)
      } catch (err) {
        throw new Error(`--gateway: ${err instanceof Error ? err.message : String(err)}`)
      }
      if (servers.length === 0) throw new Error('--gateway: no IP address in the gateway multiaddr(s) (DNS names are not looked up)')
      const report = await detectNat({ servers, timeoutMs: options.timeoutMs })
      process.stdout.write(options.json === true
        ? JSON.stringify({ ...report, modes: modeAdvice(report) }) + '\n'
        : formatReport(report) + '\n')
    })
}
