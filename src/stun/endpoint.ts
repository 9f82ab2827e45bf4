/**
 * An IP address and port as STUN reports them. On its own, without the codec, so that what only compares or
 * prints endpoints (NAT classification, the nat-type event) does not load the STUN codec with it.
 */
export interface Endpoint { address: string, port: number }

export function sameEndpoint (a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  return a != null && b != null && a.address === b.address && a.port === b.port
}

export function formatEndpoint (endpoint: Endpoint): string {
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`
}
