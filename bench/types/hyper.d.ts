// The little of hyperdht and hyperswarm (devDependencies, untyped) that bench/bulk.ts and bench/footprint.ts use.
declare module 'hyperdht' {
  import type { Duplex } from 'node:stream'
  export interface KeyPair { publicKey: Buffer, secretKey: Buffer }
  export interface NodeAddress { host: string, port: number }
  export interface HyperServer { listen: (keyPair: KeyPair) => Promise<void>, close: () => Promise<void> }
  export default class DHT {
    constructor (options: { bootstrap: NodeAddress[], host?: string })
    static keyPair (seed?: Buffer): KeyPair
    createServer (onConnection: (socket: Duplex) => void): HyperServer
    connect (publicKey: Buffer): Duplex
    destroy (): Promise<void>
  }
}

declare module 'hyperdht/testnet.js' {
  import type DHT from 'hyperdht'
  import type { NodeAddress } from 'hyperdht'
  export interface Testnet { bootstrap: NodeAddress[], nodes: DHT[], destroy: () => Promise<void> }
  export default function createTestnet (size: number, options?: { host?: string }): Promise<Testnet>
}

declare module 'hyperswarm' {
  import type { NodeAddress } from 'hyperdht'
  export interface Discovery { flushed: () => Promise<void> }
  export default class Hyperswarm {
    constructor (options: { bootstrap: NodeAddress[] })
    join (topic: Buffer, options: { server: boolean, client: boolean }): Discovery
    destroy (): Promise<void>
  }
}
