/** The DCUtR protocol id: our wire messages are the spec's, so go/rust libp2p peers can talk to us. */
export const DCUTR_PROTOCOL = '/libp2p/dcutr'

/** the largest DCUtR message we read; a CONNECT carries a handful of addresses */
export const MAX_MESSAGE_SIZE = 4096

export const DEFAULT_TIMEOUT_MS = 5000
export const DEFAULT_RETRIES = 3
export const DEFAULT_PUNCH_INTERVAL_MS = 25
