import { Command, InvalidArgumentError } from 'commander'
import { controlRequest, ControlError, DEFAULT_CONTROL_SOCKET } from './control-client.js'
import { formatValue } from './output.js'

function positiveInteger (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer')
  return Number(value)
}

export function pingCommand (): Command {
  return new Command('ping')
    .description('ping another peer through a running peer: the path (relay or direct) and RTT of each round; exit 0 when every round was answered')
    .argument('<target>', 'peer id, station:<name> or multiaddr')
    .option('-c, --count <n>', 'rounds', positiveInteger, 1)
    .option('--interval-ms <ms>', 'pause between rounds', positiveInteger, 1000)
    .option('--control-socket <path>', `the running peer's control socket (default ${DEFAULT_CONTROL_SOCKET})`, DEFAULT_CONTROL_SOCKET)
    .option('--json', 'one JSON line per round')
    .action(async (target: string, options: { count: number, intervalMs: number, controlSocket: string, json?: boolean }) => {
      let answered = 0
      // the first round resolves the target (a station lookup, a dial); later rounds go to the peer it found
      let next = target
      for (let round = 1; round <= options.count; round++) {
        if (round > 1) await new Promise(resolve => setTimeout(resolve, options.intervalMs))
        try {
          const pong = await controlRequest<{ peer: string, path: string, rttMs: number }>(options.controlSocket, 'POST', '/api/v1/ping', { target: next })
          next = pong.peer
          answered++
          print(options.json === true, { round, target, ...pong }, `pong from ${pong.peer} via ${pong.path} in ${formatValue(pong.rttMs)} ms`)
        } catch (err) {
          // no peer on the socket: nothing more to try
          if (err instanceof ControlError && /no running natmesh peer/.test(err.message)) throw err
          const code = err instanceof ControlError ? err.code : undefined
          print(options.json === true, { round, target, error: (err as Error).message, ...(code != null ? { code } : {}) }, `no pong from ${target}: ${(err as Error).message}`)
        }
      }
      process.exitCode = answered === options.count ? 0 : 1
    })
}

function print (json: boolean, fields: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? JSON.stringify(fields) + '\n' : text + '\n')
}
