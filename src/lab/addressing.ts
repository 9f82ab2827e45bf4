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

/** After a NAT restart (Topology.restartNat), slot x's router faces the WAN as 11.0.113.(120+x): slots 1..79 only */
export function slotRenumberedWanIp (x: number): string {
  checkSlotIndex(x)
  if (x > 79) throw new Error(`slot ${x}: only slots 1..79 have a second WAN address (above them sit the gateways' second addresses)`)
  return `${WAN_PREFIX}.${120 + x}`
}

/** Slot x's LAN is 192.168.x.0/24: router .1, peer .2 */
export function lanRouterIp (x: number): string {
  checkSlotIndex(x)
  return `192.168.${x}.1`
}

/** Most hosts on one LAN: the peer slots that share one NAT (a same-site group). */
export const MAX_LAN_HOSTS = 8

/** The n-th host (1-based) on slot x's LAN, 192.168.x.(1+n): the slot's own peer is host 1, peers sharing its NAT follow. */
export function lanPeerIp (x: number, n = 1): string {
  checkSlotIndex(x)
  if (!Number.isInteger(n) || n < 1 || n > MAX_LAN_HOSTS) throw new Error(`LAN host number ${n} out of range 1..${MAX_LAN_HOSTS}`)
  return `192.168.${x}.${1 + n}`
}

/**
 * Behind a carrier-grade NAT, slot x's home NAT faces the carrier's network 100.64.x.0/24 (RFC 6598 shared address
 * space, as real CGNATs use): carrier router .1, the home NAT's WAN side .2.
 */
export function carrierRouterIp (x: number): string {
  checkSlotIndex(x)
  return `100.64.${x}.1`
}

export function carrierClientIp (x: number): string {
  checkSlotIndex(x)
  return `100.64.${x}.2`
}
