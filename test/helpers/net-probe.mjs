// Measures a lab path (the WAN emulator's delay, loss and throughput), run inside a lab namespace:
//   node net-probe.mjs serve                                   a UDP echo and a TCP sink, each on an ephemeral port;
//                                                              prints {"ev":"listening","port":UDP,"tcpPort":TCP},
//                                                              runs until stdin closes
//   node net-probe.mjs probe <host> <port> <count> <interval-ms> sends <count> numbered datagrams, one every
//                                                              <interval-ms>, waits 2 s for the last answers, prints
//                                                              {"ev":"probed","sent":N,"rttsMs":[...],"arrivals":[...]}
//                                                              (the RTT of every answer that came back, in order of
//                                                              sequence; the sequence numbers in order of arrival)
//   node net-probe.mjs tcp-send <host> <port> <seconds>        writes to the TCP sink as fast as it takes for that
//                                                              long; prints {"ev":"sent","bytes":N,"ms":T}
import dgram from 'node:dgram'
import net from 'node:net'
import { performance } from 'node:perf_hooks'

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const [mode, host, portText, countText, intervalText] = process.argv.slice(2)
const LINGER_MS = 2000

if (mode === 'serve') {
  const s = dgram.createSocket('udp4')
  s.on('message', (buf, r) => { s.send(buf, r.port, r.address) })
  const sink = net.createServer((c) => { c.on('data', () => {}); c.on('error', () => {}) })
  s.bind(0, () => { sink.listen(0, '0.0.0.0', () => { out({ ev: 'listening', port: s.address().port, tcpPort: sink.address().port }) }) })
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
} else if (mode === 'probe') {
  const port = Number(portText)
  const count = Number(countText)
  const interval = Number(intervalText)
  if (![port, count, interval].every((n) => Number.isInteger(n) && n >= 0) || count < 1) {
    process.stderr.write('usage: net-probe.mjs probe <host> <port> <count> <interval-ms>\n')
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
} else if (mode === 'tcp-send') {
  const seconds = Number(countText)
  const chunk = Buffer.alloc(64 * 1024)
  const started = performance.now()
  let bytes = 0
  const c = net.connect({ host, port: Number(portText) }, () => {
    const pump = () => {
      while (performance.now() - started < seconds * 1000) {
        bytes += chunk.length
        if (!c.write(chunk)) { c.once('drain', pump); return }
      }
      out({ ev: 'sent', bytes, ms: Math.round(performance.now() - started) })
      c.destroy()
    }
    pump()
  })
  c.on('error', (e) => { process.stderr.write(`tcp-send: ${e.message}\n`); process.exit(1) })
} else {
  process.stderr.write('usage: net-probe.mjs serve | probe <host> <port> <count> <interval-ms> | tcp-send <host> <port> <seconds>\n')
  process.exit(2)
}
