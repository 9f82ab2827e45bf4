import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'

/**
 * A port free on both UDP and TCP at `host` right now, for servers that cannot be told to pick one themselves
 * (coturn has no "port 0"). The OS picks the UDP port; the TCP check makes a collision with a TCP listener unlikely.
 */
export async function freeUdpTcpPort (host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4')
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(0, host, () => { resolve(udp.address().port) })
    })
    const tcpFree = await new Promise<boolean>((resolve) => {
      const tcp = createServer()
      tcp.once('error', () => { resolve(false) })
      tcp.listen(port, host, () => { tcp.close(() => { resolve(true) }) })
    })
    udp.close()
    if (tcpFree) return port
  }
  throw new Error(`no port free on both UDP and TCP at ${host}`)
}
