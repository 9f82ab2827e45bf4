import { Command } from 'commander'
import { loadGatewayConfig } from '../config/index.js'
import { loadOrCreateIdentity } from '../core/identity.js'
import { createLogger } from '../core/logging.js'
import { printConfig } from './config-output.js'
import { runUntilSignal } from './daemon.js'
import { addGatewayOptions, gatewayFlags } from './options.js'
import { printEvent } from './output.js'

export function gatewayCommand (): Command {
  return addGatewayOptions(new Command('gateway'))
    .description('run a gateway: circuit relay, observed addresses, hole-punch coordination, HTTP API and metrics')
    .option('--print-config', 'print the effective configuration (flags > environment > file > defaults) as YAML, or JSON with --json, and exit')
    .action(async (options: Record<string, unknown>) => {
      const json = options.json === true
      const config = await loadGatewayConfig({ file: options.config as string | undefined, env: process.env, flags: gatewayFlags(options) })
      if (options.printConfig === true) {
        await printConfig(config, json)
        return
      }
      const logger = createLogger({ level: config.logLevel, json })
      const identity = await loadOrCreateIdentity(config.identityFile)
      if (identity.created) logger.info(`created identity ${identity.peerId.toString()} in ${config.identityFile}`)
      // loaded here, not at the top: every other command (a peer's start above all) skips the gateway's modules
      const { createGateway } = await import('../gateway/gateway.js')
      const gateway = await createGateway(config, { privateKey: identity.privateKey, logger })
      await gateway.start()
      printEvent({
        event: 'gateway-started',
        peerId: gateway.node.peerId.toString(),
        addrs: gateway.node.getMultiaddrs().map(String),
        api: gateway.apiUrl ?? '',
        stun: gateway.stun?.addresses().map(e => `${e.address}:${e.port}`) ?? [],
        relayWorkerPorts: gateway.node.services.forward.workerPorts
      }, json)
      const clean = await runUntilSignal('gateway', logger, async () => { await gateway.stop() })
      if (!clean) process.exitCode = 1
      printEvent({ event: 'stopped', clean }, json)
    })
}
