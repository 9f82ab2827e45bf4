import { createSocket } from 'node:dgram'

export interface UdpForwarder {
  /** where the dialer sends to */
  port: number
  /** every datagram that crossed, in order, and its direction */
  datagrams: Array<{ toListener: boolean, data: Buffer }>
  /** drops every datagram from now on, both ways (a path gone silent, like a NAT that lost its mapping) */
  cut: () => void
  restore: () => void
  close: () => Promise<void>
}

/** Forwards datagrams between one dialer and the listener on 127.0.0.1:`target` (like a NAT would), recording each. */
export async function udpForwarder (target: number): Promise<UdpForwarder> {
  const socket = createSocket('udp4')
  const datagrams: UdpForwarder['datagrams'] = []
  let dialer: { port: number } | undefined
  let cut = false
  socket.on('message', (data, rinfo) => {
    if (cut) return
    const toListener = rinfo.port !== target
    if (toListener) dialer = { port: rinfo.port }
    datagrams.push({ toListener, data: Buffer.from(data) })
    const port = toListener ? target : dialer?.port
    if (port != null) socket.send(data, port, '127.0.0.1')
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  return {
    port: socket.address().port,
    datagrams,
    cut: () => { cut = true },
    restore: () => { cut = false },
    close: async () => { await new Promise<void>(resolve => socket.close(() => { resolve() })) }
  }
}
