import { Command } from 'commander'
import { assertStationName } from '../stations/record.js'
import { addPeerOptions } from './options.js'
import { startPeerFromOptions } from './peer-command.js'

const DEFAULT_TIMEOUT_MS = 15_000

export function lookupCommand (): Command {
  return addPeerOptions(new Command('lookup'))
    .description('find a station in the gateways\' DHT: its peer, its gateways (relay addresses), mode and expiry')
    .argument('<name>', 'station name')
    .option('--timeout-ms <ms>', `give up after this long (default ${DEFAULT_TIMEOUT_MS})`)
    .action(async (name: string, options: Record<string, unknown>) => {
      assertStationName(name)
      const timeoutMs = options.timeoutMs == null ? DEFAULT_TIMEOUT_MS : Number(options.timeoutMs)
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error('--timeout-ms must be a positive integer')
      const { timeoutMs: _timeout, ...peerOptions } = options
      const { peer } = await startPeerFromOptions(peerOptions, false)
      try {
        const result = await peer.lookup(name, { signal: AbortSignal.timeout(timeoutMs) })
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
        await peer.stop()
      }
    })
}

function ignored (rejected: number): string {
  return rejected > 0 ? `; ${rejected} invalid record(s) ignored` : ''
}
