import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Command, InvalidArgumentError } from 'commander'
import { splitList } from '../config/index.js'
import { gatewayAddress } from '../config/peer.js'
import { formatReport, modeAdvice } from '../nat/describe.js'
import { gatewayStunServers } from '../nat/gateway-stun-servers.js'
import type { ClientNode } from '../peer/client-node.js'
import { formatValue } from './output.js'

/** commander's collector for a list option: comma-separated, repeated, or both (the config loader's rule) */
function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...splitList(value)]
}

function portList (value: string, previous: number[] | undefined): number[] {
  const ports = [...(previous ?? []), ...splitList(value).map(Number)]
  if (ports.length > 2 || ports.some(port => !Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new InvalidArgumentError('expected one or two ports 1..65535, e.g. 3478,3479')
  }
  return ports
}

function positiveInteger (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer')
  return Number(value)
}

interface AddressCheck {
  address: string
  transport: 'udx' | 'tcp'
  ok: boolean
  rttMs?: number
  error?: string
}

interface GatewayCheck {
  peerId: string
  addresses: AddressCheck[]
  /** TURN URLs the gateway hands out; undefined when it could not be asked */
  turn?: string[]
}

export function doctorCommand (): Command {
  return new Command('doctor')
    .description('check the gateways (libp2p over UDP and TCP, RTT, TURN) and this host\'s NAT type, and say which modes will work; exit 1 when no gateway answers')
    .requiredOption('--gateway <multiaddrs...>', 'gateway address(es) ending in /p2p/<id>, comma-separated or repeated; give the UDP and the TCP address to check both (a second gateway sharpens the mapping test)', collect)
    .option('--stun-ports <ports>', 'the gateways\' STUN ports, primary and other (default 3478,3479)', portList)
    .option('--timeout-ms <ms>', 'one STUN test\'s wait for its answer', positiveInteger, 1500)
    .option('--dial-timeout-ms <ms>', 'one libp2p dial and ping of a gateway address', positiveInteger, 5000)
    .option('--json', 'print the report as one JSON object')
    .action(async (options: { gateway: string[], stunPorts?: number[], timeoutMs: number, dialTimeoutMs: number, json?: boolean }) => {
      for (const address of options.gateway) {
        const checked = gatewayAddress.safeParse(address)
        if (!checked.success) throw new Error(`--gateway: ${checked.error.issues.map(issue => issue.message).join('; ')}`)
      }
      const servers = gatewayStunServers(options.gateway, options.stunPorts ?? [3478, 3479])
      if (servers.length === 0) throw new Error('--gateway: no IP address in the gateway multiaddr(s) (DNS names are not looked up)')
      // the checks' modules (libp2p, STUN) load only when the doctor runs, not with every other command
      const [{ createClientNode }, { detectNat }] = await Promise.all([import('../peer/client-node.js'), import('../nat/detect.js')])
      const node = await createClientNode(await generateKeyPair('Ed25519'))
      await node.start()
      let gateways: GatewayCheck[]
      try {
        gateways = await checkGateways(node, options.gateway, options.dialTimeoutMs)
      } finally {
        await node.stop()
      }
      const report = await detectNat({ servers, timeoutMs: options.timeoutMs })
      const setup = {
        reachable: gateways.some(gateway => gateway.addresses.some(address => address.ok)),
        turn: gateways.some(gateway => (gateway.turn?.length ?? 0) > 0)
      }
      process.stdout.write(options.json === true
        ? JSON.stringify({ ...report, gateways, modes: modeAdvice(report, setup) }) + '\n'
        : formatGateways(gateways) + '\n' + formatReport(report, setup) + '\n')
      process.exitCode = setup.reachable ? 0 : 1
    })
}

/**
 * Dials every address of every gateway on a fresh connection of its own, one at a time (so one RTT does not
 * include another's handshake), pings over it, and asks each gateway that answered for its ICE servers.
 */
async function checkGateways (node: ClientNode, addresses: string[], timeoutMs: number): Promise<GatewayCheck[]> {
  const [{ dialAndPing }, { fetchIceServers }] = await Promise.all([import('../peer/client-node.js'), import('../ice-servers/client.js')])
  const byPeer = new Map<string, GatewayCheck>()
  for (const address of addresses) {
    const ma = multiaddr(address)
    const peerId = ma.getComponents().findLast(c => c.name === 'p2p')?.value as string
    const check = byPeer.get(peerId) ?? { peerId, addresses: [] }
    byPeer.set(peerId, check)
    const transport = ma.getComponents().some(c => c.name === 'udx') ? 'udx' : 'tcp'
    try {
      const { connection, rttMs } = await dialAndPing(node, ma, timeoutMs)
      check.addresses.push({ address, transport, ok: true, rttMs })
      await connection.close().catch(() => {})
    } catch (err) {
      check.addresses.push({ address, transport, ok: false, error: err instanceof Error ? err.message : String(err) })
    }
  }
  for (const check of byPeer.values()) {
    if (!check.addresses.some(address => address.ok)) continue
    const answer = await fetchIceServers(node, peerIdFromString(check.peerId), { signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined)
    check.turn = answer?.iceServers.flatMap(server => [server.urls].flat()).filter(url => url.startsWith('turn:'))
  }
  return [...byPeer.values()]
}

function formatGateways (gateways: GatewayCheck[]): string {
  return ['Gateways', ...gateways.flatMap(gateway => [
    `  ${gateway.peerId}`,
    ...gateway.addresses.map(a => `    ${a.transport.padEnd(4)} ${a.ok ? `answers, rtt ${formatValue(a.rttMs)} ms` : `no answer (${a.error ?? '?'})`}  ${a.address}`),
    `    turn ${gateway.turn == null ? 'unknown (the gateway did not answer)' : gateway.turn.length > 0 ? gateway.turn.join(', ') : 'none (this gateway runs no TURN)'}`
  ])].join('\n')
}
