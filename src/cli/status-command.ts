import { Command } from 'commander'
import type { NatReport } from '../nat/types.js'
import type { PeerConnectionStats } from '../peer/connection-stats.js'
import type { SessionStats } from '../upgrade/session.js'
import { controlRequest, DEFAULT_CONTROL_SOCKET } from './control-client.js'
import { formatValue } from './output.js'

interface Status {
  peerId: string
  mode: string
  gateways: Array<{ gateway: string, transport: string, relayAddresses: string[] }>
  relayAddresses: string[]
  publicAddresses: string[]
  nat: NatReport | null
  natMapping: { kind: string }
}

export function statusCommand (): Command {
  return new Command('status')
    .description('show a running peer: its gateways, NAT type, public addresses, and per peer the path, RTT, bytes and sessions')
    .option('--control-socket <path>', `the peer's control socket (default ${DEFAULT_CONTROL_SOCKET})`, DEFAULT_CONTROL_SOCKET)
    .option('--json', 'print {status, peers, sessions} as one JSON object')
    .action(async (options: { controlSocket: string, json?: boolean }) => {
      const [status, peers, sessions] = await Promise.all([
        controlRequest<Status>(options.controlSocket, 'GET', '/api/v1/status'),
        controlRequest<PeerConnectionStats[]>(options.controlSocket, 'GET', '/api/v1/connections'),
        controlRequest<SessionStats[]>(options.controlSocket, 'GET', '/api/v1/sessions')
      ])
      process.stdout.write(options.json === true
        ? JSON.stringify({ status, peers, sessions }) + '\n'
        : formatStatus(status, peers, sessions))
    })
}

function formatStatus (status: Status, peers: PeerConnectionStats[], sessions: SessionStats[]): string {
  const nat = status.nat
  const lines = [
    `peer      ${status.peerId} (${status.mode})`,
    `nat       ${nat == null ? 'not detected (yet, or detection is off)' : describeNat(nat)}; mapping ${status.natMapping.kind}`,
    ...list('public', status.publicAddresses, 'none observed yet'),
    ...list('gateways', status.gateways.map(g => `${g.gateway} ${g.transport === 'none' ? 'down' : `over ${g.transport}`}, ${g.relayAddresses.length > 0 ? 'reservation held' : 'no reservation'}`), 'none'),
    ...list('peers', peers.map(describePeer), 'none'),
    ...list('sessions', sessions.map(s => `${s.id} ${s.peer} ${s.protocol} ${s.state} on ${s.path}: ${s.messagesSent} sent, ${s.messagesReceived} received, ${s.bytesViaDirect} B direct, ${s.bytesViaRelay} B relay, ${s.migrations} migration(s)`), 'none')
  ]
  return lines.join('\n') + '\n'
}

function describeNat (nat: NatReport): string {
  const details = [nat.mapping != null ? `mapping ${nat.mapping}` : '', nat.filtering != null ? `filtering ${nat.filtering}` : ''].filter(d => d !== '')
  const address = nat.publicAddress == null ? '' : ` at ${nat.publicAddress.address}:${nat.publicAddress.port}`
  return `${nat.natType}${address}${details.length > 0 ? ` (${details.join(', ')})` : ''}`
}

function describePeer (peer: PeerConnectionStats): string {
  const rtt = peer.rttMs == null ? 'rtt ?' : `rtt ${formatValue(peer.rttMs)} ms`
  return `${peer.peer} ${peer.path}${peer.remoteAddr != null ? ` ${peer.remoteAddr}` : ''}, ${rtt}, ${peer.bytesSent} B sent, ${peer.bytesReceived} B received`
}

/** `label    first` then the rest indented under it */
function list (label: string, items: string[], none: string): string[] {
  const [first, ...rest] = items.length > 0 ? items : [none]
  return [`${label.padEnd(10)}${first}`, ...rest.map(item => `${''.padEnd(10)}${item}`)]
}
