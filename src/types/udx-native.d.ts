// udx-native ships no type declarations; these cover the part natmesh uses.
declare module 'udx-native' {
  import { EventEmitter } from 'node:events'
  import { Duplex } from 'node:stream'

  export interface UDXAddress { host: string, family: number, port: number }

  export class UDXSocket extends EventEmitter {
    readonly bound: boolean
    readonly closing: boolean
    readonly streams: Set<UDXStream>
    bind (port?: number, host?: string): void
    address (): UDXAddress | null
    close (): Promise<void>
    send (buffer: Uint8Array, port: number, host: string, ttl?: number): Promise<boolean>
    trySend (buffer: Uint8Array, port: number, host: string, ttl?: number): void
    setRecvBufferSize (size: number): number
    setSendBufferSize (size: number): number
    on (event: 'message', listener: (buffer: Buffer, rinfo: UDXAddress) => void): this
    on (event: 'close' | 'listening', listener: () => void): this
    on (event: 'error', listener: (err: Error) => void): this
  }

  export interface UDXStreamOptions {
    firewall?: (socket: UDXSocket, port: number, host: string, family: number) => boolean
    framed?: boolean
  }

  export class UDXStream extends Duplex {
    readonly id: number
    readonly remoteId: number
    readonly remoteHost: string | null
    readonly remotePort: number
    readonly connected: boolean
    readonly rtt: number
    readonly bytesTransmitted: number
    readonly bytesReceived: number
    readonly packetsReceived: number
    connect (socket: UDXSocket, remoteId: number, port: number, host: string): void
    setKeepalive (timeoutMs: number): void
    /** one unreliable datagram on the stream (a udx message packet), outside the byte stream */
    send (buffer: Uint8Array): Promise<boolean>
    /** forwards every packet this stream receives to `destination`'s remote, inside udx: JS never sees it */
    relayTo (destination: UDXStream): void
    destroy (err?: Error): this
  }

  export default class UDX {
    constructor ()
    createSocket (opts?: { ipv6Only?: boolean, reuseAddress?: boolean }): UDXSocket
    createStream (id: number, opts?: UDXStreamOptions): UDXStream
    readonly bytesTransmitted: number
    readonly bytesReceived: number
  }
}
