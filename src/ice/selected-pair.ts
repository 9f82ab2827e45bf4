import type { Connection } from '@libp2p/interface'
import { CODE_WEBRTC } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'

/** how an ICE connection's selected candidate pair carries data: host-to-host, through a NAT mapping, or via TURN */
export type CandidateType = 'host' | 'srflx' | 'relay'

export interface SelectedPair {
  type: CandidateType
  local: { type: string, address?: string, port?: number }
  remote: { type: string, address?: string, port?: number }
}

export function isWebRtc (ma: Multiaddr): boolean {
  return ma.getComponents().some(c => c.code === CODE_WEBRTC)
}

/**
 * Reads the selected candidate pair of a WebRTC connection through the standard `getStats()` report.
 * libp2p keeps the RTCPeerConnection on its connection's transport-level part (`maConn.peerConnection`),
 * which no public API exposes; undefined when that shape is not there or no pair is selected.
 */
export async function selectedPair (connection: Connection): Promise<SelectedPair | undefined> {
  const peerConnection = (connection as unknown as { maConn?: { peerConnection?: { getStats?: () => Promise<Map<string, any>> } } }).maConn?.peerConnection
  if (typeof peerConnection?.getStats !== 'function') return undefined
  const report = await peerConnection.getStats()
  const stats = [...report.values()]
  const pair = stats.find(s => s.type === 'candidate-pair' && s.nominated === true) ?? stats.find(s => s.type === 'candidate-pair')
  if (pair == null) return undefined
  const candidate = (id: unknown): { type: string, address?: string, port?: number } => {
    const c = report.get(String(id))
    return { type: String(c?.candidateType ?? 'unknown'), address: c?.ip ?? c?.address, port: c?.port }
  }
  const local = candidate(pair.localCandidateId)
  const remote = candidate(pair.remoteCandidateId)
  return { type: pairType(local.type, remote.type), local, remote }
}

/**
 * A pair goes through TURN when either end is a relay candidate (libjuice reports the local end of a relayed
 * pair by its mapped address, as srflx), through a NAT mapping when either end is reflexive, else host to host.
 */
export function pairType (local: string, remote: string): CandidateType {
  const types = [local, remote]
  if (types.includes('relay')) return 'relay'
  if (types.includes('srflx') || types.includes('prflx')) return 'srflx'
  return 'host'
}
