import { Command } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import type { IdentifyResult } from '@libp2p/interface'
import { createLogger } from '../core/logging.js'
import type { ClientNode } from '../peer/client-node.js'
import { assertStationName } from '../stations/record.js'
import { commandIdentity, peerConfigFromOptions } from './peer-command.js'

const DEFAULT_TIMEOUT_MS = 15_000

export function lookupCommand (): Command {
  return new Command('lookup')
    .description('find a station in the gateways\' DHT: its peer, its gateways (relay addresses), mode and expiry')
    .argument('<name>', 'station name')
    .option('--config <file>', 'YAML peer config file (or $NATMESH_CONFIG): its gateways are asked')
    .option('--gateway <multiaddrs...>', 'gateway address(es) ending in /p2p/<id> (comma-separated or repeated)')
    .option('--identity-file <path>', 'key file to look up with (default: a throwaway key, so a peer running here keeps its identity)')
    .option('--timeout-ms <ms>', `give up after this long (default ${DEFAULT_TIMEOUT_MS})`)
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--json', 'print the result as one JSON object')
    .action(async (name: string, options: Record<string, unknown>) => {
      assertStationName(name)
      const timeoutMs = options.timeoutMs == null ? DEFAULT_TIMEOUT_MS : Number(options.timeoutMs)
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error('--timeout-ms must be a positive integer')
      const { timeoutMs: _timeout, ...peerOptions } = options
      const config = await peerConfigFromOptions(peerOptions)
      const logger = createLogger({ level: config.logLevel, json: options.json === true })
      const signal = AbortSignal.timeout(timeoutMs)
      // libp2p and the DHT load only when a lookup runs, not with every other command
      const [{ createClientNode }, { lookupStation }] = await Promise.all([import('../peer/client-node.js'), import('../stations/lookup.js')])
      const node = await createClientNode(await commandIdentity(config, options, logger, true))
      await node.start()
      try {
        await reachGateways(node, config.gateways, signal)
        const result = await lookupStation(node.services.dht, name, { signal })
        const record = result.record
        if (options.json === true) {
          process.stdout.write(JSON.stringify({ name, found: record != null && !record.withdrawn, ...record, hops: result.hops, answered: result.answered, rejected: result.rejected, ms: result.ms }) + '\n')
        } else if (record == null) {
          process.stdout.write(`station ${name}: not found (${result.answered} gateway(s) answered in ${result.ms} ms${ignored(result.rejected)})\n`)
        } else {
          process.stdout.write([
            `station ${name}${record.withdrawn ? ' (withdrawn by its owner)' : ''}`,
            `  peer      ${record.peerId}`,
            `  mode      ${record.mode}`,
            `  expires   ${new Date(record.expiresAt).toISOString()} (in ${Math.round((record.expiresAt - Date.now()) / 1000)} s)`,
            `  sequence  ${record.seq}`,
            ...record.relayAddrs.map((address, i) => `  ${i === 0 ? 'via' : '   '}       ${address}`),
            `  lookup    ${result.ms} ms, ${result.hops ?? '?'} hop(s), ${result.answered} gateway(s) answered${ignored(result.rejected)}`
          ].join('\n') + '\n')
        }
        process.exitCode = record != null && !record.withdrawn ? 0 : 1
      } finally {
        await node.stop()
      }
    })
}

/**
 * Dials every configured gateway address at once and resolves when one gateway has told us (by identify) that it
 * speaks the DHT, which is when the DHT client can ask it.
 */
async function reachGateways (node: ClientNode, gateways: string[], signal: AbortSignal): Promise<void> {
  const identified = new Promise<void>((resolve) => {
    const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
      if (!evt.detail.protocols.some(protocol => protocol.includes('/kad/'))) return
      node.removeEventListener('peer:identify', onIdentify)
      resolve()
    }
    node.addEventListener('peer:identify', onIdentify)
  })
  const errors: string[] = []
  const dials = Promise.all(gateways.map(async address => node.dial(multiaddr(address), { signal }).catch((err: Error) => { errors.push(`${address}: ${err.message}`) })))
  const failedAll = dials.then(() => {
    if (errors.length === gateways.length) throw new Error(`no gateway could be reached: ${errors.join('; ')}`)
    return identified
  })
  const aborted = new Promise<never>((_resolve, reject) => {
    signal.addEventListener('abort', () => { reject(new Error('timed out reaching the gateways')) }, { once: true })
  })
  await Promise.race([identified, failedAll, aborted])
}

function ignored (rejected: number): string {
  return rejected > 0 ? `; ${rejected} invalid record(s) ignored` : ''
}
