import type { OverlaySocket } from '../transport/overlay-socket.js'
import type { UdpEndpoint, UdxTransport } from '../transport/index.js'

/**
 * Birthday punching, after hyperdht's holepuncher: a NAT that picks a random port per destination can't be told
 * where to send, but if the side behind it opens many sockets that all send to the other side's one known
 * mapping, and the other side sends to random ports on that NAT's IP, the two meet after about
 * 64512 / sockets probes. The first two-way exchange names the socket that carries the connection.
 */
export interface BirthdaySettings {
  /** sockets the sprayer opens; default 256 */
  sockets: number
  /** probes a second the prober sends; default 1000 */
  probesPerSecond: number
  /** probes one attempt sends at most; default 4000 */
  maxProbes: number
  /** how often the sprayer re-sends from every socket, in case a datagram was lost; default 1000 ms */
  sprayIntervalMs: number
  /** how long one attempt may take once the exchange is done; default 6000 ms */
  timeBudgetMs: number
  /** birthday attempts per remote peer per minute, either side; default 3 */
  attemptsPerPeerPerMinute: number
}

export const BIRTHDAY_DEFAULTS: BirthdaySettings = {
  sockets: 256,
  probesPerSecond: 1000,
  maxProbes: 4000,
  sprayIntervalMs: 1000,
  timeBudgetMs: 6000,
  attemptsPerPeerPerMinute: 3
}

/** What a birthday attempt cost, for stats and metrics. */
export interface BirthdayCost {
  sockets: number
  probes: number
  sprays: number
}

export interface BirthdayHit {
  /** the extra socket a probe got through to; the caller owns it now */
  socket: OverlaySocket
  /** the other side's endpoint, as it reached that socket */
  remote: UdpEndpoint
}

/** How often the prober wakes up to send its next batch: fine enough to pace, coarse enough to stay cheap. */
const PROBE_TICK_MS = 10

function sameEndpoint (a: UdpEndpoint, b: UdpEndpoint): boolean {
  return a.host === b.host && a.port === b.port
}

/**
 * The side behind the port-changing NAT: sends from each of `sockets` (extra sockets, opened ahead because that
 * takes a while) to `target` every `sprayIntervalMs`, and resolves with the first socket that hears the other
 * side's probe. Every other socket is closed at once; on abort, all of them.
 */
export async function spray (transport: UdxTransport, sockets: readonly OverlaySocket[], target: UdpEndpoint, token: Uint8Array, settings: BirthdaySettings, signal: AbortSignal, cost: BirthdayCost): Promise<BirthdayHit> {
  if (signal.aborted) {
    for (const socket of sockets) void transport.closeExtraSocket(socket)
    throw signal.reason
  }
  return await new Promise<BirthdayHit>((resolve, reject) => {
    const unsubscribe: Array<() => void> = []
    let done = false
    const finish = (winner?: OverlaySocket): void => {
      done = true
      clearInterval(timer)
      signal.removeEventListener('abort', onAbort)
      for (const stop of unsubscribe) stop()
      for (const socket of sockets) if (socket !== winner) void transport.closeExtraSocket(socket)
    }
    const onAbort = (): void => {
      finish()
      reject(new Error(`no probe reached any of ${sockets.length} sockets (${cost.sprays} datagrams sprayed)`))
    }
    for (const socket of sockets) {
      unsubscribe.push(socket.onProbe(token, (remote, answer) => {
        if (done || !sameEndpoint(remote, target)) return
        // tell the prober it got through, so it stops
        if (!answer) socket.sendProbe(remote, token, true)
        finish(socket)
        resolve({ socket, remote })
      }))
    }
    const sprayAll = (): void => {
      for (const socket of sockets) socket.sendProbe(target, token, false)
      cost.sprays += sockets.length
    }
    const timer = setInterval(sprayAll, settings.sprayIntervalMs)
    signal.addEventListener('abort', onAbort, { once: true })
    sprayAll()
  })
}

/**
 * The side whose NAT keeps one mapping: sends probes from its one socket to `host` on the candidate ports, at
 * `probesPerSecond`, up to `maxProbes`. A probe that reaches one of the sprayer's sockets opens our NAT for the
 * answer; resolves with the sprayer's endpoint once a datagram from it arrives.
 */
export async function probe (socket: OverlaySocket, host: string, family: 4 | 6, ports: Iterator<number>, token: Uint8Array, settings: BirthdaySettings, signal: AbortSignal, cost: BirthdayCost): Promise<UdpEndpoint> {
  if (signal.aborted) throw signal.reason
  const perTick = Math.max(1, Math.round(settings.probesPerSecond * PROBE_TICK_MS / 1000))
  return await new Promise<UdpEndpoint>((resolve, reject) => {
    let sent = 0
    const finish = (): void => {
      clearInterval(timer)
      signal.removeEventListener('abort', onAbort)
      stopListening()
    }
    const onAbort = (): void => {
      finish()
      reject(new Error(`no answer to ${sent} probes of ${host}`))
    }
    const stopListening = socket.onProbe(token, (remote, answer) => {
      if (remote.host !== host) return
      if (!answer) socket.sendProbe(remote, token, true)
      finish()
      resolve(remote)
    })
    const sendBatch = (): void => {
      for (let i = 0; i < perTick && sent < settings.maxProbes; i++) {
        const next = ports.next()
        if (next.done === true) break
        socket.sendProbe({ host, port: next.value, family }, token, false)
        sent++
        cost.probes++
      }
      // out of probes: stop sending, keep listening until the attempt's budget runs out
      if (sent >= settings.maxProbes) clearInterval(timer)
    }
    const timer = setInterval(sendBatch, PROBE_TICK_MS)
    signal.addEventListener('abort', onAbort, { once: true })
    sendBatch()
  })
}
