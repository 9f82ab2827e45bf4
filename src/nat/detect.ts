import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { formatEndpoint } from '../stun/endpoint.js'
import type { ChangeRequest } from '../stun/codec.js'
import { allocationOf, filteringBehaviour, mappingBehaviour, natTypeOf } from './classify.js'
import type { MappingSample } from './classify.js'
import { StunClient } from '../stun/client.js'
import type { BindingOutcome, BindingResult } from '../stun/client.js'
import { isUnanswered } from '../stun/errors.js'
import { retransmitWithin } from '../stun/transaction.js'
import type { RetransmitPolicy } from '../stun/transaction.js'
import type { Endpoint, NatReport, StunServerAddress } from './types.js'

export interface DetectNatOptions {
  /** the primary server first; the first that answers is used, and a second IP (another gateway) helps the mapping test */
  servers: StunServerAddress[]
  /** a bound UDP socket to test from (it is left open); default: a fresh one on an ephemeral port */
  socket?: Socket
  /** how long one test waits for its answer, retransmitting meanwhile (default 1500) */
  timeoutMs?: number
  /** fresh sockets opened to observe port allocation (default 3) */
  allocationSamples?: number
  /** ends the tests early (a stopping peer); the report then says what was seen so far */
  signal?: AbortSignal
}

const DEFAULT_TIMEOUT_MS = 1500
const DEFAULT_ALLOCATION_SAMPLES = 3

/** a test's outcome; undefined when nothing answered, which the tests read as the NAT (or a firewall) dropping it */
export type TestOutcome = BindingOutcome | undefined

export function isBinding (outcome: TestOutcome): outcome is BindingResult {
  return outcome != null && 'mapped' in outcome
}

/** A Binding whose silence is a result, not a failure */
export async function bindingTest (client: StunClient, to: Endpoint, policy: RetransmitPolicy, change?: ChangeRequest): Promise<TestOutcome> {
  return client.binding(to, policy, change).catch(orSilence)
}

function orSilence (err: unknown): undefined {
  if (isUnanswered(err)) return undefined
  throw err
}

/**
 * RFC 5780 NAT behaviour discovery against natmesh gateways' STUN servers: mapping and filtering behaviour, the
 * classic NAT type they add up to, port allocation of successive mappings, and hairpinning. Never throws for
 * network reasons: no answer at all is reported as `udp-blocked`, with a note saying so.
 */
export async function detectNat (options: DetectNatOptions): Promise<NatReport> {
  if (options.servers.length === 0) throw new Error('detectNat needs at least one STUN server')
  const started = performance.now()
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const socket = options.socket ?? await openSocket()
  const client = new StunClient(socket)
  try {
    return await runTests({ ...options, timeoutMs }, socket, client, started)
  } finally {
    client.close()
    if (options.socket == null) socket.close()
  }
}

async function runTests (options: DetectNatOptions & { timeoutMs: number }, socket: Socket, client: StunClient, started: number): Promise<NatReport> {
  const { timeoutMs } = options
  const policy: RetransmitPolicy = { ...retransmitWithin(timeoutMs), ...(options.signal != null ? { signal: options.signal } : {}) }
  const { address, port } = socket.address()
  const localAddress: Endpoint = { address, port }
  const notes: string[] = []
  const servers = options.servers.map(s => ({ ...s, primary: { address: s.host, port: s.port } }))
  const finish = (fields: Omit<NatReport, 'localAddress' | 'notes' | 'detectedAt' | 'durationMs'>): NatReport => ({
    ...fields, localAddress, notes, detectedAt: new Date().toISOString(), durationMs: Math.round(performance.now() - started)
  })

  // Test I: the mapping towards the primary server (the first server that answers at all)
  let server = servers[0] as typeof servers[number]
  let first: BindingResult | undefined
  for (const candidate of servers) {
    const outcome = await bindingTest(client, candidate.primary, policy)
    if (isBinding(outcome)) {
      server = candidate
      first = outcome
      break
    }
  }
  if (first == null) {
    notes.push(`no STUN answer from ${servers.map(s => formatEndpoint(s.primary)).join(', ')} within ${timeoutMs} ms: ` +
      'UDP is blocked on the way, or no STUN server runs there')
    return finish({ natType: 'udp-blocked', confidence: 0.7, server: server.primary })
  }

  const otherPort = first.other?.port ?? server.otherPort
  const alternateIp = first.other != null && first.other.address !== server.host ? first.other.address : undefined
  const secondServer = servers.find(s => s.host !== server.host)

  // hairpinning meanwhile: a datagram to our own public address opens no filter towards the server
  const hairpin = client.hairpin(first.mapped, policy).then(() => true, (err: unknown) => { orSilence(err); return false })

  // Filtering first, from a socket that has only talked to the primary endpoint: a mapping test towards the other
  // address or port would open the NAT's filter for exactly the answers the filtering tests wait for
  const [fromOtherAddressAndPort, fromOtherPort] = await Promise.all([
    alternateIp != null ? bindingTest(client, server.primary, policy, { ip: true, port: true }) : undefined,
    otherPort != null ? bindingTest(client, server.primary, policy, { ip: false, port: true }) : undefined
  ])
  if (alternateIp == null) notes.push(`${server.host} has no alternate IP: full and restricted cone filtering look alike`)
  if (otherPort == null) notes.push(`${server.host} names no second STUN port: filtering and mapping are partly guessed`)
  const filtering = filteringBehaviour({
    ...(alternateIp != null ? { fromOtherAddressAndPort: isBinding(fromOtherAddressAndPort) } : {}),
    fromOtherPort: isBinding(fromOtherPort)
  })

  // Mapping: the same socket towards another IP (the alternate, else another gateway) and another port
  const otherIp = alternateIp ?? secondServer?.host
  const otherIpPort = alternateIp != null ? server.port : secondServer?.port
  const [viaOtherAddress, viaOtherAddressAndPort, viaOtherPort] = await Promise.all([
    otherIp != null && otherIpPort != null ? bindingTest(client, { address: otherIp, port: otherIpPort }, policy) : undefined,
    alternateIp != null && otherPort != null ? bindingTest(client, { address: alternateIp, port: otherPort }, policy) : undefined,
    otherPort != null ? bindingTest(client, { address: server.host, port: otherPort }, policy) : undefined
  ])
  const mapping = mappingBehaviour({
    first: first.mapped,
    ...(isBinding(viaOtherAddress) ? { otherAddress: viaOtherAddress.mapped } : {}),
    ...(isBinding(viaOtherAddressAndPort) ? { otherAddressAndPort: viaOtherAddressAndPort.mapped } : {}),
    ...(isBinding(viaOtherPort) ? { otherPort: viaOtherPort.mapped } : {})
  })
  if (!mapping.certain && otherIp == null) notes.push('no second IP to test against: an address-dependent mapping would look endpoint-independent')

  const noNat = first.mapped.port === localAddress.port && localIps(localAddress.address).has(first.mapped.address)
  const natType = natTypeOf(noNat, mapping.behaviour, filtering.behaviour)

  // Allocation: the mappings this socket made, in order, then fresh sockets' first mappings
  const socketMappings = [first, viaOtherAddress, viaOtherAddressAndPort, viaOtherPort]
    .filter(isBinding)
    .map(result => result.mapped.port)
    .filter((port, i, ports) => ports.indexOf(port) === i)
    .map(mappedPort => ({ localPort: localAddress.port, mappedPort }))
  const [freshMappings, hairpinning] = await Promise.all([
    freshSocketMappings(server.primary, options.allocationSamples ?? DEFAULT_ALLOCATION_SAMPLES, policy),
    hairpin
  ])
  const allocation = allocationOf([...socketMappings, ...freshMappings])

  let confidence = 0.95
  if (!mapping.certain) confidence -= 0.25
  if (!filtering.certain && (natType === 'restricted-cone' || natType === 'no-nat')) confidence -= 0.3
  return finish({
    natType,
    confidence: Math.round(confidence * 100) / 100,
    publicAddress: first.mapped,
    ...(mapping.behaviour != null ? { mapping: mapping.behaviour } : {}),
    filtering: filtering.behaviour,
    portPreserved: first.mapped.port === localAddress.port,
    ...(allocation.allocation != null ? { allocation: allocation.allocation } : {}),
    ...(allocation.delta != null ? { allocationDelta: allocation.delta } : {}),
    hairpinning,
    server: server.primary
  })
}

/** One Binding from each of `count` new sockets, one after the other so their order is the NAT's allocation order */
async function freshSocketMappings (server: Endpoint, count: number, policy: RetransmitPolicy): Promise<MappingSample[]> {
  const samples: MappingSample[] = []
  for (let i = 0; i < count && policy.signal?.aborted !== true; i++) {
    const socket = await openSocket()
    const client = new StunClient(socket)
    try {
      const outcome = await bindingTest(client, server, policy)
      if (isBinding(outcome)) samples.push({ localPort: socket.address().port, mappedPort: outcome.mapped.port })
    } finally {
      client.close()
      socket.close()
    }
  }
  return samples
}

export async function openSocket (): Promise<Socket> {
  const socket = createSocket('udp4')
  // an ICMP error for one request must not surface as an unhandled 'error' event
  socket.on('error', () => {})
  await new Promise<void>((resolve) => { socket.bind(0, '0.0.0.0', resolve) })
  return socket
}

/** the socket's own IP, or every IP of this host when it is bound to a wildcard */
export function localIps (bound: string): Set<string> {
  if (bound !== '0.0.0.0' && bound !== '::') return new Set([bound])
  return new Set(Object.values(networkInterfaces()).flatMap(list => (list ?? []).map(info => info.address)))
}
