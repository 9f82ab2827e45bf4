// The natmesh gateway dashboard: polls the gateway's /api/v1/dashboard and renders it. Plain JS, no build step,
// nothing loaded from elsewhere. Every value goes in as text (textContent), never as HTML.
'use strict'

const SNAPSHOT_URL = 'api/v1/dashboard'
const REFRESH_MS = 2000

/** el('td', { class: 'x', title: 'y' }, child, 'text', ...) */
function el (tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value != null) node.setAttribute(name, String(value))
  }
  for (const child of children.flat()) {
    if (child == null) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

function shortId (peerId) {
  return peerId.length > 16 ? `${peerId.slice(0, 8)}…${peerId.slice(-6)}` : peerId
}

function peerRef (peerId) {
  return el('code', { title: peerId, 'data-peer': peerId }, shortId(peerId))
}

function badge (kind, text) {
  return el('span', { class: `badge ${kind}` }, text ?? kind)
}

function bytes (n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

function clock (iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false })
}

/** "in 1 h 59 min", "3 min ago" */
function relative (iso, now) {
  const s = Math.round((new Date(iso).getTime() - now) / 1000)
  const abs = Math.abs(s)
  const text = abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.floor(abs / 60)} min` : `${Math.floor(abs / 3600)} h ${Math.floor((abs % 3600) / 60)} min`
  return s >= 0 ? `in ${text}` : `${text} ago`
}

function duration (seconds) {
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
}

function fillBody (table, rows, columns, emptyText) {
  const body = table.querySelector('tbody')
  body.replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: columns }, emptyText))]))
}

function renderGateway (snapshot) {
  const g = snapshot.gateway
  document.getElementById('gateway').replaceChildren(
    el('code', { class: 'pid', id: 'gateway-id' }, g.peerId), ` · up ${duration(g.uptimeS)} · TURN ${g.turn}`
  )
  const t = snapshot.totals
  document.getElementById('total-peers').textContent = `${t.connectedPeers} / ${t.peers}`
  document.getElementById('total-reservations').textContent = String(t.reservations)
  document.getElementById('total-circuits').textContent = String(t.circuits)
  document.getElementById('total-relayed').textContent = bytes(t.relayedBytes)
  document.getElementById('total-turn').textContent = t.turnAllocations == null ? 'off' : String(t.turnAllocations)
  document.getElementById('total-punches').replaceChildren(
    el('span', { id: 'punch-success', title: 'succeeded' }, `${t.punches.success} ok`),
    el('span', { class: 'sub' }, el('span', { id: 'punch-failure' }, `${t.punches.failure} failed`), ' · ',
      el('span', { id: 'punch-skipped' }, `${t.punches.skipped} skipped`))
  )
}

function renderPeers (snapshot, now) {
  const rows = snapshot.peers.map(peer => el('tr', { 'data-peer': peer.peerId },
    el('td', {}, el('code', { class: 'pid' }, peer.peerId)),
    el('td', {}, badge(peer.connected ? 'connected' : 'gone', peer.connected ? 'connected' : 'gone')),
    el('td', {}, peer.addresses.length === 0
      ? el('span', { class: 'muted' }, 'none seen')
      : peer.addresses.map(a => el('span', { class: 'addr mono', title: `first seen ${a.firstSeen}, last ${a.lastSeen}` },
        el('span', { class: 'transport' }, a.transport), `${a.ip}:${a.port}`))),
    el('td', {}, peer.natType ?? el('span', { class: 'muted' }, 'not reported')),
    el('td', {}, peer.mapping ?? el('span', { class: 'muted' }, 'not reported')),
    el('td', {}, peer.reservationExpiresAt == null ? el('span', { class: 'muted' }, 'none') : `expires ${relative(peer.reservationExpiresAt, now)}`),
    el('td', { class: 'circuits' }, `${peer.circuitsOut} / ${peer.circuitsIn}`),
    el('td', { class: 'turn' }, String(peer.turnAllocations))
  ))
  fillBody(document.getElementById('peers'), rows, 8, 'No peers yet.')
}

function punchSummary (punch, now) {
  if (punch == null) return el('span', { class: 'muted' }, 'none reported')
  return [badge(punch.outcome), ` ${punch.strategy ?? ''} · ${punch.attempts} attempt(s) · ${relative(punch.at, now)}`]
}

function renderPaths (snapshot, now) {
  const rows = snapshot.paths.map(path => el('tr', { 'data-pair': `${path.a} ${path.b}` },
    el('td', {}, peerRef(path.a)),
    el('td', {}, peerRef(path.b)),
    el('td', { class: 'path' }, badge(path.path)),
    el('td', {}, String(path.circuits)),
    el('td', {}, path.relayedSince == null ? el('span', { class: 'muted' }, '–') : relative(path.relayedSince, now)),
    el('td', {}, punchSummary(path.lastPunch, now))
  ))
  fillBody(document.getElementById('paths'), rows, 6, 'No relayed connections or hole punches between peers yet.')
}

function renderTimeline (snapshot) {
  const minutes = snapshot.punches.perMinute
  const max = Math.max(1, ...minutes.map(m => m.success + m.failure + m.skipped))
  document.getElementById('timeline-max').textContent = `tallest bar: ${max} per minute`
  document.getElementById('timeline').replaceChildren(...minutes.map(m => {
    const bar = el('div', { class: 'minute', title: `${clock(m.minute)}: ${m.success} success, ${m.failure} failure, ${m.skipped} skipped` })
    for (const outcome of ['success', 'failure', 'skipped']) {
      if (m[outcome] === 0) continue
      const part = el('span', { class: outcome })
      // through the CSSOM: the page's policy allows no style attributes
      part.style.height = `${(m[outcome] / max) * 100}%`
      bar.append(part)
    }
    return bar
  }))
}

function renderReports (snapshot) {
  const rows = snapshot.punches.recent.slice(0, 50).map(r => el('tr', {},
    el('td', { title: r.at }, clock(r.at)),
    el('td', {}, peerRef(r.peer)),
    el('td', {}, r.remotePeer == null ? el('span', { class: 'muted' }, 'not said') : peerRef(r.remotePeer)),
    el('td', {}, badge(r.outcome)),
    el('td', {}, r.strategy ?? '–'),
    el('td', {}, String(r.attempts)),
    el('td', {}, r.durationMs == null ? '–' : `${r.durationMs} ms`),
    el('td', {}, r.transport)
  ))
  fillBody(document.getElementById('reports'), rows, 8, 'No hole-punch reports yet.')
}

async function refresh () {
  const status = document.getElementById('status')
  try {
    const response = await fetch(SNAPSHOT_URL, { cache: 'no-store' })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const snapshot = await response.json()
    const now = Date.now()
    renderGateway(snapshot)
    renderPeers(snapshot, now)
    renderPaths(snapshot, now)
    renderTimeline(snapshot)
    renderReports(snapshot)
    status.className = 'status'
    status.textContent = `updated ${clock(snapshot.generatedAt)}`
    document.body.dataset.generatedAt = snapshot.generatedAt
  } catch (err) {
    status.className = 'status error'
    status.textContent = `gateway unreachable (${err.message}); retrying`
  } finally {
    setTimeout(refresh, REFRESH_MS)
  }
}

refresh()
