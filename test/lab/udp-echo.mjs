// UDP echo for measuring a lab path (the WAN emulator's delay and loss), run inside a lab namespace:
//   node udp-echo.mjs serve                                   echoes every datagram; prints {"ev":"listening","port":P}
//                                                              (an ephemeral port), runs until stdin closes
//   node udp-echo.mjs probe <host> <port> <count> <interval-ms> sends <count> numbered datagrams, one every
//                                                              <interval-ms>, waits 2 s for the last answers, prints
//                                                              {"ev":"probed","sent":N,"rttsMs":[...],"arrivals":[...]}
//                                                              (the RTT of every answer that came back, in order of
//                                                              sequence; the sequence numbers in order of arrival)
import dgram from 'node:dgram'
import { performance } from 'node:perf_hooks'

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const [mode, host, portText, countText, intervalText] = process.argv.slice(2)
const LINGER_MS = 2000

if (mode === 'serve') {
  const s = dgram.createSocket('udp4')
  s.on('message', (buf, r) => { s.send(buf, r.port, r.address) })
  s.bind(0, () => { out({ ev: 'listening', port: s.address().port }) })
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
} else if (mode === 'probe') {
  const port = Number(portText)
  const count = Number(countText)
  const interval = Number(intervalText)
  if (![port, count, interval].every((n) => Number.isInteger(n) && n >= 0) || count < 1) {
    process.stderr.write('usage: udp-echo.mjs probe <host> <port> <count> <interval-ms>\n')
    process.exit(2)
  }
  const sentAt = new Float64Array(count)
  const rtts = new Map()
  const arrivals = []
  const s = dgram.createSocket('udp4')
  s.on('message', (buf) => {
    const seq = buf.readUInt32BE(0)
    if (seq >= count || rtts.has(seq)) return
    rtts.set(seq, performance.now() - sentAt[seq])
    arrivals.push(seq)
  })
  s.bind(0, () => {
    let seq = 0
    const send = () => {
      const buf = Buffer.alloc(64)
      buf.writeUInt32BE(seq, 0)
      sentAt[seq] = performance.now()
      s.send(buf, port, host)
      if (++seq < count) setTimeout(send, interval)
      else {
        setTimeout(() => {
          const rttsMs = [...rtts.entries()].sort((a, b) => a[0] - b[0]).map(([, ms]) => Math.round(ms * 100) / 100)
          out({ ev: 'probed', sent: count, rttsMs, arrivals })
          process.exit(0)
        }, LINGER_MS)
      }
    }
    send()
  })
} else {
  process.stderr.write('usage: udp-echo.mjs serve | probe <host> <port> <count> <interval-ms>\n')
  process.exit(2)
}
