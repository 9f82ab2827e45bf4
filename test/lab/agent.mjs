// A socket agent the lab tests start inside a namespace. It reads JSON commands from stdin, one a line, and
// writes JSON events to stdout, one a line:
//   {"op":"udp-bind","port":P}                        -> {"ev":"bound","port":P}
//   {"op":"udp-send","from":P,"host":H,"port":Q,"msg":M}   (from a bound port)
//   {"op":"tcp-listen","port":P}                      -> {"ev":"listening","port":P}
//   {"op":"tcp-connect","host":H,"port":Q,"msg":M}    -> {"ev":"tcp-connected","msg":M} | {"ev":"tcp-error",...}
// and reports what arrives: {"ev":"udp"|"tcp","lport":P,"from":addr,"port":srcPort,"msg":M}
import dgram from 'node:dgram'
import net from 'node:net'
import readline from 'node:readline'

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const sockets = new Map()

const ops = {
  'udp-bind' ({ port }) {
    const s = dgram.createSocket('udp4')
    s.on('message', (buf, r) => out({ ev: 'udp', lport: port, from: r.address, port: r.port, msg: buf.toString() }))
    s.on('error', (e) => out({ ev: 'error', op: 'udp-bind', port, code: e.code }))
    s.bind(port, () => { sockets.set(port, s); out({ ev: 'bound', port }) })
  },
  'udp-send' ({ from, host, port, msg }) {
    sockets.get(from).send(msg, port, host, (e) => { if (e) out({ ev: 'error', op: 'udp-send', code: e.code }) })
  },
  'tcp-listen' ({ port }) {
    net.createServer((c) => {
      c.once('data', (d) => { out({ ev: 'tcp', lport: port, from: c.remoteAddress, port: c.remotePort, msg: d.toString() }); c.end() })
    }).listen(port, '0.0.0.0', () => out({ ev: 'listening', port }))
  },
  'tcp-connect' ({ host, port, msg }) {
    const c = net.connect({ host, port, timeout: 3000 }, () => { c.end(msg); out({ ev: 'tcp-connected', msg }) })
    c.on('timeout', () => { out({ ev: 'tcp-error', msg, code: 'ETIMEDOUT' }); c.destroy() })
    c.on('error', (e) => out({ ev: 'tcp-error', msg, code: e.code }))
  }
}

readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    const cmd = JSON.parse(line)
    ops[cmd.op](cmd)
  })
  .on('close', () => process.exit(0))
out({ ev: 'ready' })
