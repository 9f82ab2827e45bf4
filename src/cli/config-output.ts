/** `--print-config`: the configuration a daemon would run with, as YAML a config file can take (JSON with --json) */
export async function printConfig (config: object, json: boolean): Promise<void> {
  // the YAML library loads only here and for a config file: a daemon started without one never needs it
  process.stdout.write(json ? JSON.stringify(config) + '\n' : (await import('yaml')).stringify(config))
}
