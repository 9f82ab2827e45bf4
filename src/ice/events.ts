import type { WarningEvent } from '../core/events.js'
import type { CandidateType } from './selected-pair.js'

/** What ICE mode reports; the peer passes these on as its own events unchanged. */
export type IceEvent =
  /**
   * the dialling side: how the WebRTC attempt after a relayed connection went. negotiationMs: the WebRTC dial
   * (signalling, ICE, DTLS, SCTP); msSinceRelay: from the relayed connection opening to now
   */
  | { event: 'ice', peer: string, outcome: 'success' | 'failure' | 'skipped', strategy: string, localNat: string, remoteNat: string, timeoutMs?: number, negotiationMs?: number, msSinceRelay?: number, candidateType?: CandidateType, remoteAddr?: string, reason?: string }
  /** a WebRTC connection (either direction) and the candidate pair ICE selected for it */
  | { event: 'ice-path', peer: string, candidateType: CandidateType, local: string, remote: string }
  | WarningEvent
