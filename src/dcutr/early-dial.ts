import type { Logger, PeerId } from '@libp2p/interface'
import { isPrivate } from '@libp2p/utils'
import { changesPortPerDestination } from '../nat/mapping-profile.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import { toUdxMultiaddr } from '../transport/index.js'
import type { UdpEndpoint } from '../transport/index.js'
import type { Clock } from './clock.js'
import { PunchTally } from './outcome.js'
import type { HolePunchOutcome } from './outcome.js'
import type { PunchDialer } from './punch-dialer.js'

export interface EarlyDialInit {
  dialer: PunchDialer
  natMapping: () => Promise<NatMappingProfile>
  allowPrivateAddresses: boolean
  /** how long the dial may take */
  timeoutMs: number
  clock: Clock
  log: Logger
  /** told of a dial that made the direct connection */
  report: (outcome: HolePunchOutcome) => void
}

/**
 * The dial a forwarded circuit starts (see relay/forward/messages.ts): its gateway told us where the remote's
 * overlay socket is mapped, as the gateway sees it, and told the remote ours. Unless our NAT gives each
 * destination a port of its own, we dial that mapping now, while the relayed connection is still in its
 * handshake; the remote does the same with ours, so each side's HELLOs open its NAT for the other's, as in a
 * plain DCUtR punch but without the exchange's round trips. DCUtR still runs over the relayed connection; it ends
 * with the direct connection this made, or punches itself where this cannot meet (a symmetric NAT on the other
 * side, two peers behind one NAT). A dial that does not get there is logged, not reported: DCUtR reports.
 */
export class EarlyDial {
  private readonly init: EarlyDialInit
  /** peers a dial is under way to */
  private readonly dialing = new Set<string>()

  constructor (init: EarlyDialInit) {
    this.init = init
  }

  /** `relayedSince`: when the circuit's connection began, which the outcome's times count from */
  start (peer: PeerId, at: UdpEndpoint, relayedSince: number, shutdown: AbortSignal): void {
    const { dialer, log } = this.init
    const key = peer.toString()
    if (shutdown.aborted || this.dialing.has(key) || dialer.directConnection(peer) != null) return
    if (!this.init.allowPrivateAddresses && isPrivate(toUdxMultiaddr(at.host, at.port))) return
    this.dialing.add(key)
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.timeoutMs), shutdown])
    const tally = new PunchTally(peer, this.init.clock)
    tally.strategy = 'dcutr'
    this.init.natMapping()
      .then(async (mapping) => {
        if (changesPortPerDestination(mapping)) throw new Error(`our NAT maps ports per destination (${mapping.kind}): the remote's dial cannot meet ours`)
        const direct = await dialer.dialMapping(peer, at, signal)
        this.init.report(tally.success(1, direct, { timeline: { open: relayedSince } }))
      })
      .catch((err: Error) => { log('early dial to %p at %s:%d ended - %s', peer, at.host, at.port, err.message) })
      .finally(() => { this.dialing.delete(key) })
  }
}
