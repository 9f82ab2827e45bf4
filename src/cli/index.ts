import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { ConfigError } from '../config/index.js'
import { catCommand } from './cat-command.js'
import { demoCommand } from './demo-command.js'
import { acceptLauncherStops } from './daemon.js'
import { doctorCommand } from './doctor-command.js'
import { gatewayCommand } from './gateway-command.js'
import { labCommand } from './lab-command.js'
import { lookupCommand } from './lookup-command.js'
import { peerCommand } from './peer-command.js'
import { pingCommand } from './ping-command.js'
import { statusCommand } from './status-command.js'

// dist/cli/index.js and src/cli/index.ts both sit two levels below package.json
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

acceptLauncherStops()

const program = new Command('natmesh')
  .description('mesh networking for edge nodes behind NATs')
  .version(version, '-V, --version', 'print the natmesh version')
  .showHelpAfterError()
  .addCommand(gatewayCommand())
  .addCommand(peerCommand())
  .addCommand(statusCommand())
  .addCommand(pingCommand())
  .addCommand(catCommand())
  .addCommand(lookupCommand())
  .addCommand(labCommand())
  .addCommand(demoCommand())
  .addCommand(doctorCommand())
  .addCommand(new Command('version').description('print the natmesh version').action(() => { process.stdout.write(version + '\n') }))

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  // configuration and usage mistakes get their message, not a stack trace
  const message = err instanceof ConfigError ? err.message : `natmesh: ${err instanceof Error ? err.message : String(err)}`
  process.stderr.write(message + '\n')
  process.exit(err instanceof ConfigError ? 2 : 1)
}
