import { allocationOf, mappingBehaviour } from './classify.js'
import { isBinding, localIps, openSocket, bindingTest } from './detect.js'
import { StunClient } from '../stun/client.js'
import { retransmitWithin } from '../stun/transaction.js'
import type { NatReport, StunServerAddress } from './types.js'
import type { NatMappingProfile } from './mapping-profile.js'

/**
 * The mapping half of NAT detection, on its own because a hole punch needs it within a second of start-up: the
 * filtering tests wait out timeouts for answers that a restricted NAT never lets through, these don't. One fresh
 * socket asks the first answering gateway, then the same gateway's other port and another IP, one after the other
 * so the mapped ports come in allocation order.
 */
export async function probeMapping (servers: readonly StunServerAddress[], timeoutMs: number): Promise<NatMappingProfile> {
  const socket = await openSocket()
  const client = new StunClient(socket)
  const policy = retransmitWithin(timeoutMs)
  try {
    let first
    let server: StunServerAddress | undefined
    for (const candidate of servers) {
      const outcome = await bindingTest(client, { address: candidate.host, port: candidate.port }, policy)
      if (isBinding(outcome)) {
        first = outcome
        server = candidate
        break
      }
    }
    if (first == null || server == null) return { kind: 'unknown' }
    const local = socket.address()
    if (first.mapped.port === local.port && localIps(local.address).has(first.mapped.address)) return { kind: 'open' }
    const primary = server
    const otherPort = first.other?.port ?? primary.otherPort
    const otherIp = first.other != null && first.other.address !== primary.host ? first.other.address : servers.find(s => s.host !== primary.host)?.host
    const viaOtherAddress = otherIp != null ? await bindingTest(client, { address: otherIp, port: primary.port }, policy) : undefined
    const viaOtherPort = otherPort != null ? await bindingTest(client, { address: primary.host, port: otherPort }, policy) : undefined
    const mapping = mappingBehaviour({
      first: first.mapped,
      ...(isBinding(viaOtherAddress) ? { otherAddress: viaOtherAddress.mapped } : {}),
      ...(isBinding(viaOtherPort) ? { otherPort: viaOtherPort.mapped } : {})
    })
    if (mapping.behaviour == null) return { kind: 'unknown' }
    if (mapping.behaviour === 'endpoint-independent') return { kind: 'endpoint-independent' }
    const samples = [first, viaOtherAddress, viaOtherPort].filter(isBinding).map(result => ({ localPort: local.port, mappedPort: result.mapped.port }))
    const { allocation, delta } = allocationOf(samples)
    return allocation === 'sequential' && delta != null ? { kind: 'sequential', delta } : { kind: 'random' }
  } finally {
    client.close()
    socket.close()
  }
}

/** What a full NAT report says about port mapping, in the terms the hole puncher decides by. */
export function mappingFromReport (report: NatReport): NatMappingProfile {
  switch (report.natType) {
    case 'no-nat':
    case 'full-cone':
      return { kind: 'open' }
    case 'udp-blocked':
      return { kind: 'unknown' }
  }
  if (report.mapping == null) return { kind: 'unknown' }
  if (report.mapping === 'endpoint-independent') return { kind: 'endpoint-independent' }
  return report.allocation === 'sequential' && report.allocationDelta != null
    ? { kind: 'sequential', delta: report.allocationDelta }
    : { kind: 'random' }
}
