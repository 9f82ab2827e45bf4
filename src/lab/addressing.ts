/**
 * The lab's address plan. The WAN is 11.0.113.0/24: libp2p's isPrivate() calls RFC1918, 100.64/10, 198.18/15 and
 * TEST-NET ranges private, so the "internet" must look public. That is safe only because no lab namespace has a
 * route out of the lab.
 */
export const WAN_PREFIX = '11.0.113'
export const WAN_PREFIX_LEN = 24
export const MAX_GATEWAYS = 10
export const MAX_SLOTS = 99

/** gateway i (0-based) is 11.0.113.(10+i) */
export function gatewayIp (i: number): string {
  if (!Number.isInteger(i) || i < 0 || i >= MAX_GATEWAYS) throw new Error(`gateway index ${i} out of range 0..${MAX_GATEWAYS - 1}`)
  return `${WAN_PREFIX}.${10 + i}`
}

/**
 * Gateway i's second WAN address, 11.0.113.(200+i): its STUN server answers RFC 5780 "change IP" requests from it,
 * which is what tells a full cone from a restricted one. Above every slot's address (at most .119).
 */
export function gatewayAltIp (i: number): string {
  gatewayIp(i)
  return `${WAN_PREFIX}.${200 + i}`
}

function checkSlotIndex (x: number): void {
  if (!Number.isInteger(x) || x < 1 || x > MAX_SLOTS) throw new Error(`slot number ${x} out of range 1..${MAX_SLOTS}`)
}

/** Slot x (1-based) faces the WAN as 11.0.113.(20+x): its NAT router, or the peer itself when public. */
export function slotWanIp (x: number): string {
  checkSlotIndex(x)
  return `${WAN_PREFIX}.${20 + x}`
}

/** Slot x's LAN is 192.168.x.0/24: router .1, peer .2 */
export function lanRouterIp (x: number): string {
  checkSlotIndex(x)
  return `192.168.${x}.1`
}

export function lanPeerIp (x: number): string {
  checkSlotIndex(x)
  return `192.168.${x}.2`
}
