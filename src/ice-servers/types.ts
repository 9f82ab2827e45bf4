import { z } from 'zod'

/** Peers ask a gateway for its ICE servers over this protocol; Noise's peer id is the TURN credential's identity */
export const ICE_SERVERS_PROTOCOL = '/natmesh/ice-servers/1.0.0'

/** a response is a few hundred bytes; anything near this is not a response */
export const MAX_ICE_SERVERS_MESSAGE_BYTES = 16 * 1024

const iceUrl = z.string().regex(/^(stuns?|turns?):[^\s]+$/, 'expected a stun:, stuns:, turn: or turns: URL')

/** One entry in the shape of WebRTC's RTCIceServer, so apps can pass the list to RTCPeerConnection as it is */
export const iceServerSchema = z.strictObject({
  urls: z.array(iceUrl).min(1),
  username: z.string().min(1).max(512).optional(),
  credential: z.string().min(1).max(512).optional()
}).refine(server => (server.username == null) === (server.credential == null), 'username and credential come together')

export const iceServersResponseSchema = z.strictObject({
  /** own STUN and TURN first, public fallbacks last */
  iceServers: z.array(iceServerSchema).max(32),
  /** seconds the TURN credentials stay valid: fetch again before then */
  ttl: z.number().int().min(0)
})

export type IceServer = z.output<typeof iceServerSchema>
export type IceServersResponse = z.output<typeof iceServersResponseSchema>
