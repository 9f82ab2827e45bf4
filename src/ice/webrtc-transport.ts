import { AsyncLocalStorage } from 'node:async_hooks'
import { webRTC } from '@libp2p/webrtc'
import { cleanup } from 'node-datachannel'
import type { WebRTCTransportComponents } from '@libp2p/webrtc'
import type { PeerId, Transport } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import { rtcConfiguration } from '../ice-servers/pool.js'
import type { IceServerPool } from '../ice-servers/pool.js'

/** what one ICE attempt may gather */
export interface IceCandidatePolicy { stun: boolean, turn: boolean }

/** a peer whose strategy is not known (yet) gets every kind of candidate */
const DEFAULT_POLICY: IceCandidatePolicy = { stun: true, turn: true }
/** a policy agreed for a peer holds this long: the attempt follows the NAT type exchange within seconds */
const POLICY_TTL_MS = 60_000

/**
 * The candidate policy agreed with each remote peer: the dialling side sets it before it dials, the answering side
 * when the dialler's NAT type arrives (both derive the same strategy from the same pair of NAT types).
 */
export class IceCandidatePolicies {
  private readonly policies = new Map<string, { policy: IceCandidatePolicy, until: number }>()

  set (peer: PeerId, policy: IceCandidatePolicy): void {
    const now = Date.now()
    for (const [key, entry] of this.policies) if (entry.until < now) this.policies.delete(key)
    this.policies.set(peer.toString(), { policy, until: now + POLICY_TTL_MS })
  }

  get (peer: PeerId | string): IceCandidatePolicy {
    const entry = this.policies.get(peer.toString())
    return entry != null && entry.until >= Date.now() ? entry.policy : DEFAULT_POLICY
  }
}

/**
 * @libp2p/webrtc (private-to-private: SDP and candidates signalled over the relayed connection, ICE by
 * node-datachannel/libjuice) with its RTCConfiguration built per attempt from the gateways' ICE servers and the
 * policy agreed with that peer. The transport asks for its configuration without saying which peer it is for,
 * so the peer's policy travels in an AsyncLocalStorage around the transport's dial and its signalling handler.
 */
export function iceWebRTC (pool: IceServerPool, policies: IceCandidatePolicies): (components: WebRTCTransportComponents) => Transport {
  const current = new AsyncLocalStorage<IceCandidatePolicy>()
  const factory = webRTC({
    rtcConfiguration: async () => {
      const policy = current.getStore() ?? DEFAULT_POLICY
      return rtcConfiguration(pool.select(policy), !policy.stun)
    }
  })
  return (components) => {
    const registrar: Registrar = Object.create(components.registrar)
    registrar.handle = async (protocol, handler, options) => components.registrar.handle(protocol, async (stream, connection) => {
      await current.run(policies.get(connection.remotePeer), async () => handler(stream, connection))
    }, options)
    // libp2p's components object resolves services lazily: keep it as the prototype, only the registrar differs
    const transport = factory(Object.create(components, { registrar: { value: registrar } }))
    const dial = transport.dial.bind(transport)
    transport.dial = async (ma, options) => {
      const target = ma.getComponents().findLast(c => c.name === 'p2p')?.value
      return current.run(target == null ? DEFAULT_POLICY : policies.get(target), async () => dial(ma, options))
    }
    return transport
  }
}

/**
 * Stops node-datachannel's threads and closes every WebRTC connection left in this process. @libp2p/webrtc never
 * calls it (it would close other nodes' connections in the same process), and a data channel whose close never
 * arrives keeps the process running after the node stopped (node-datachannel issue #349). Only for a process
 * that runs a single peer and is done with it: the CLI, after the peer stopped.
 */
export function releaseWebRtc (): void {
  cleanup()
}
