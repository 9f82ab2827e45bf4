/** Which way a connection between two peers runs: through a gateway's relay, or straight between them. */
export type Path = 'relay' | 'direct'

/** How a peer reaches a gateway: the UDP overlay (udx) or TCP. */
export type OverlayTransport = 'udx' | 'tcp'
