import { AsyncLocalStorage } from 'node:async_hooks'
import { webRTC } from '@libp2p/webrtc'
import type { WebRTCTransportComponents } from '@libp2p/webrtc'
import type { DialTransportOptions, Transport } from '@libp2p/interface'
import { rtcConfiguration } from './ice-server-pool.js'
import type { IceServerPool } from './ice-server-pool.js'

/** what one outgoing ICE attempt may gather; passed as a dial option (libp2p hands dial options to the transport) */
export interface IceCandidatePolicy { stun: boolean, turn: boolean }
export interface IceDialOptions { iceCandidatePolicy?: IceCandidatePolicy }

/** an answering peer does not know the dialler's strategy: it offers every kind, the dialler's policy decides */
const ANSWER_POLICY: IceCandidatePolicy = { stun: true, turn: true }

/**
 * @libp2p/webrtc (private-to-private: SDP and candidates signalled over the relayed connection, ICE by
 * node-datachannel/libjuice) with its RTCConfiguration built per attempt from the gateways' ICE servers. The
 * transport asks for its configuration without saying which dial it is for, so the dial's candidate policy
 * travels in an AsyncLocalStorage around the dial.
 */
export function iceWebRTC (pool: IceServerPool): (components: WebRTCTransportComponents) => Transport {
  const dialPolicy = new AsyncLocalStorage<IceCandidatePolicy>()
  const factory = webRTC({
    rtcConfiguration: async () => {
      const policy = dialPolicy.getStore() ?? ANSWER_POLICY
      return rtcConfiguration(pool.select(policy), !policy.stun)
    }
  })
  return (components) => {
    const transport = factory(components)
    const dial = transport.dial.bind(transport)
    transport.dial = async (ma, options: DialTransportOptions & IceDialOptions) => {
      const policy = options.iceCandidatePolicy ?? ANSWER_POLICY
      return dialPolicy.run(policy, async () => dial(ma, options))
    }
    return transport
  }
}
