import { Command, CommanderError } from 'commander'
import { ConfigError } from '../config/index.js'
import { catCommand } from './cat-command.js'
import { demoCommand } from './demo-command.js'
import { doctorCommand } from './doctor-command.js'
import { gatewayCommand } from './gateway-command.js'
import { labCommand } from './lab-command.js'
import { lookupCommand } from './lookup-command.js'
import { peerCommand } from './peer-command.js'

const program = new Command('natmesh')
  .description('mesh networking for edge nodes behind NATs')
  .showHelpAfterError()
  .addCommand(gatewayCommand())
  .addCommand(peerCommand())
  .addCommand(catCommand())
  .addCommand(lookupCommand())
  .addCommand(labCommand())
  .addCommand(demoCommand())
  .addCommand(doctorCommand())

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  // configuration and usage mistakes get their message, not a stack trace
  const message = err instanceof ConfigError ? err.message : `natmesh: ${err instanceof Error ? err.message : String(err)}`
  process.stderr.write(message + '\n')
  process.exit(err instanceof ConfigError ? 2 : 1)
}
