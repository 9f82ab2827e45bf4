import { performance } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Command } from 'commander'
import { loadPeerConfig } from '../config/index.js'
import type { PeerConfig } from '../config/index.js'
import { loadOrCreateIdentity } from '../core/identity.js'
import { createLogger } from '../core/logging.js'
import type { Logger } from '../core/logging.js'
import { MAX_TIMEOUT_MS as MAX_ICE_TIMEOUT_MS } from '../ice/strategy-history.js'
import type { JsonApi } from '../http/json-api.js'
import type { NatmeshPeer } from '../peer/peer.js'
import type { Path } from '../peer/events.js'
import type { PrivateKey } from '@libp2p/interface'
import { printConfig } from './config-output.js'
import { runUntilSignal } from './daemon.js'
import { addPeerOptions, peerFlags } from './options.js'
import { printEvent } from './output.js'

export async function peerConfigFromOptions (options: Record<string, unknown>): Promise<PeerConfig> {
  return loadPeerConfig({ file: options.config as string | undefined, env: process.env, flags: peerFlags(options) })
}

/**
 * The key a command runs with. The daemon (`peer`) keeps its identity in its key file; a one-off command (`cat`,
 * `lookup`) run in a daemon's directory must not take that daemon's peer id, so it uses a throwaway key unless
 * --identity-file names one.
 */
export async function commandIdentity (config: PeerConfig, options: Record<string, unknown>, logger: Logger, throwaway: boolean): Promise<PrivateKey> {
  if (throwaway && options.identityFile == null) return generateKeyPair('Ed25519')
  const identity = await loadOrCreateIdentity(config.identityFile)
  if (identity.created) logger.info(`created identity ${identity.peerId.toString()} in ${config.identityFile}`)
  return identity.privateKey
}

export interface StartPeerOptions {
  /** events as lines on stdout (the daemon); otherwise they go to the log on stderr (stdout carries data) */
  printEvents: boolean
  /** `cat`: a throwaway key unless --identity-file is given */
  throwawayIdentity: boolean
  /** serve the control socket (`peer` only: `natmesh status` must find the daemon there, not a one-off command) */
  controlSocket: boolean
}

/**
 * performance marks (node:perf_hooks) a peer start sets, in this order; bench:footprint reads them to split the
 * time from process start to the first reservation into phases
 */
export const STARTUP_MARKS = {
  /** the CLI's own modules are loaded and the command runs */
  loaded: 'natmesh:loaded',
  /** config and identity are read */
  configured: 'natmesh:configured',
  /** the peer's modules (libp2p and the protocols) are loaded */
  peerLoaded: 'natmesh:peer-loaded',
  /** createPeer returned: the libp2p node and the peer's parts exist */
  created: 'natmesh:created',
  /** peer.start() returned: listening, the gateway dials under way */
  started: 'natmesh:started'
} as const

/** Loads config and identity, creates and starts a peer with its local APIs. Shared by `peer` and `cat`. */
export async function startPeerFromOptions (options: Record<string, unknown>, start: StartPeerOptions): Promise<{ peer: NatmeshPeer, logger: Logger }> {
  const json = options.json === true
  performance.mark(STARTUP_MARKS.loaded)
  const config = await peerConfigFromOptions(options)
  const logger = createLogger({ level: config.logLevel, json })
  const privateKey = await commandIdentity(config, options, logger, start.throwawayIdentity)
  performance.mark(STARTUP_MARKS.configured)
  // loaded here, not at the top: the other commands (status, ping, gateway, lab) never need the peer's modules
  const { createPeer } = await import('../peer/peer.js')
  performance.mark(STARTUP_MARKS.peerLoaded)
  const peer = await createPeer(config, { privateKey, logger })
  performance.mark(STARTUP_MARKS.created)
  if (start.printEvents) peer.addEventListener('event', (evt) => { printEvent(evt.detail, json) })
  else peer.addEventListener('event', (evt) => { logger.info(evt.detail, evt.detail.event) })
  // this process runs one peer: once it stopped, nothing else needs WebRTC's threads
  // (loaded in ice mode only: @libp2p/webrtc costs every other peer ~0.5 s of start-up)
  if (config.mode === 'ice') {
    const { releaseWebRtc } = await import('../ice/webrtc-transport.js')
    peer.addEventListener('stopped', () => { releaseWebRtc() })
  }
  await peer.start()
  performance.mark(STARTUP_MARKS.started)
  const apis: JsonApi[] = []
  try {
    const controlSocket = start.controlSocket && config.controlSocket !== false ? config.controlSocket : undefined
    if (config.api != null || controlSocket != null) {
      // the HTTP stack (fastify, prom-client) loads only when an API is served (`cat` and --no-control-socket serve none)
      const { startStatusApi } = await import('../peer/status-api.js')
      if (config.api != null) apis.push(await startStatusApi(peer, { ...config.api, logger: logger.child({ component: 'status-api' }) }))
      if (controlSocket != null) apis.push(await startStatusApi(peer, { path: controlSocket, control: true, logger: logger.child({ component: 'control-socket' }) }))
    }
  } catch (err) {
    await Promise.all(apis.map(async api => { await api.close() }))
    await peer.stop()
    throw err
  }
  peer.addEventListener('stopped', () => { for (const api of apis) void api.close() })
  return { peer, logger }
}

/**
 * Dials `target` over the relay, pings over it, waits for the hole punch and pings over the direct path:
 * the trial the NAT lab runs, and a connectivity check for users. Resolves with the last ping.
 */
async function probe (peer: NatmeshPeer, target: string, logger: Logger): Promise<{ peer: string, path: Path, rttMs: number }> {
  const relayed = await peer.connect(target)
  const remote = relayed.remotePeer
  const overRelay = await peer.ping(remote, relayed)
  if (peer.config.mode === 'relay-only' || (peer.config.mode === 'opportunistic' && !peer.config.natTraversal.enabled)) return { peer: remote.toString(), ...overRelay }
  const { holePunchTimeoutMs, holePunchRetries } = peer.config.natTraversal
  // ice mode: the WebRTC attempt may take the longest timeout its strategy history allows
  const directWithinMs = peer.config.mode === 'ice' ? MAX_ICE_TIMEOUT_MS + 1000 : holePunchTimeoutMs * Math.max(holePunchRetries, 1) + 1000
  const direct = await peer.waitForDirect(remote, directWithinMs)
  if (direct == null) {
    logger.warn(`no direct path to ${remote.toString()}; traffic stays on the relay`)
    return { peer: remote.toString(), ...overRelay }
  }
  return { peer: remote.toString(), ...await peer.ping(remote, direct) }
}

export function peerCommand (): Command {
  return addPeerOptions(new Command('peer'))
    .description('run a peer daemon: reserve relay slots on gateways and go direct by hole punching')
    .option('--dial <target>', 'connect to this peer (peer id, station:<name> or multiaddr), report the path and exit: 0 when it was reached, 1 when not')
    .option('--control-socket <path>', 'control socket for `natmesh status` and `natmesh ping`, mode 0600 (default: the identity file with .sock, ./.natmesh/peer.sock)')
    .option('--no-control-socket', 'serve no control socket')
    .option('--print-config', 'print the effective configuration (flags > environment > file > defaults) as YAML, or JSON with --json, and exit')
    .action(async (options: Record<string, unknown>) => {
      const json = options.json === true
      if (options.printConfig === true) {
        await printConfig(await peerConfigFromOptions(options), json)
        return
      }
      const { peer, logger } = await startPeerFromOptions(options, { printEvents: true, throwawayIdentity: false, controlSocket: true })
      const target = typeof options.dial === 'string' ? options.dial : undefined
      // a one-shot dial stops the daemon when it is done; its exit status is the answer
      const dial = target == null ? undefined : dialOnce(peer, target, logger, json)
      const clean = await runUntilSignal('peer', logger, async () => { await peer.stop() }, dial)
      if (!clean || (dial != null && !(await dial))) process.exitCode = 1
      printEvent({ event: 'stopped', clean }, json)
    })
}

/** Dials and probes `target` once; reports the outcome as a `dial-result` event and says whether it was reached. */
async function dialOnce (peer: NatmeshPeer, target: string, logger: Logger, json: boolean): Promise<boolean> {
  try {
    await waitForGateway(peer)
    const last = await probe(peer, target, logger)
    printEvent({ event: 'dial-result', target, reached: true, peer: last.peer, path: last.path, rttMs: last.rttMs }, json)
    return true
  } catch (err) {
    printEvent({ event: 'error', message: `dial ${target} failed: ${err instanceof Error ? err.message : String(err)}` }, json)
    printEvent({ event: 'dial-result', target, reached: false }, json)
    return false
  }
}

/** Resolves once at least one gateway holds a reservation for us. */
export async function waitForGateway (peer: NatmeshPeer): Promise<void> {
  if (peer.relayAddresses().length > 0) return
  await new Promise<void>((resolve) => {
    const onEvent = (evt: CustomEvent<{ event: string }>): void => {
      if (evt.detail.event !== 'reservation') return
      peer.removeEventListener('event', onEvent)
      resolve()
    }
    peer.addEventListener('event', onEvent)
  })
}
