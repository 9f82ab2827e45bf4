import { stringify } from 'yaml'

/** `--print-config`: the configuration a daemon would run with, as YAML a config file can take (JSON with --json) */
export function printConfig (config: object, json: boolean): void {
  process.stdout.write(json ? JSON.stringify(config) + '\n' : stringify(config))
}
