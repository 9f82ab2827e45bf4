import { Command } from 'commander'
import { loadPeerConfig } from '../config/index.js'
import { loadOrCreateIdentity } from '../identity.js'
import { createLogger } from '../logging.js'
import type { Logger } from '../logging.js'
import { createPeer } from '../peer/peer.js'
import { releaseWebRtc } from '../peer/ice/webrtc-transport.js'
import { startStatusApi } from '../peer/status-api.js'
import type { NatmeshPeer } from '../peer/peer.js'
import { runUntilSignal } from './daemon.js'
import { addPeerOptions, peerFlags } from './options.js'
import { printEvent } from './output.js'

/** Loads config and identity, creates and starts a peer that prints its events. Shared by `peer` and `cat`. */
export async function startPeerFromOptions (options: Record<string, unknown>, printEvents: boolean): Promise<{ peer: NatmeshPeer, logger: Logger }> {
  const json = options.json === true
  const config = await loadPeerConfig({ file: options.config as string | undefined, env: process.env, flags: peerFlags(options) })
  const logger = createLogger({ level: config.logLevel, json })
  const identity = await loadOrCreateIdentity(config.identityFile)
  if (identity.created) logger.info(`created identity ${identity.peerId.toString()} in ${config.identityFile}`)
  const peer = await createPeer(config, { privateKey: identity.privateKey })
  if (printEvents) peer.addEventListener('event', (evt) => { printEvent(evt.detail, json) })
  else peer.addEventListener('event', (evt) => { logger.info(evt.detail, evt.detail.event) })
  // this process runs one peer: once it stopped, nothing else needs WebRTC's threads
  if (config.mode === 'ice') peer.addEventListener('stopped', () => { releaseWebRtc() })
  await peer.start()
  if (config.api != null) {
    const api = await startStatusApi(peer, { ...config.api, logger: logger.child({ component: 'status-api' }) })
    peer.addEventListener('stopped', () => { void api.close() })
  }
  return { peer, logger }
}

/**
 * Dials `target` over the relay, pings over it, waits for the hole punch and pings over the direct path:
 * the trial the NAT lab and the demo run, and a connectivity check for users.
 */
export async function probe (peer: NatmeshPeer, target: string, logger: Logger): Promise<void> {
  const relayed = await peer.connect(target)
  await peer.ping(relayed.remotePeer, relayed)
  if (peer.config.mode !== 'opportunistic' || !peer.config.natTraversal.enabled) return
  const { holePunchTimeoutMs, holePunchRetries } = peer.config.natTraversal
  const direct = await peer.waitForDirect(relayed.remotePeer, holePunchTimeoutMs * Math.max(holePunchRetries, 1) + 1000)
  if (direct == null) {
    logger.warn(`no direct path to ${relayed.remotePeer.toString()}; traffic stays on the relay`)
    return
  }
  await peer.ping(relayed.remotePeer, direct)
}

export function peerCommand (): Command {
  return addPeerOptions(new Command('peer'))
    .description('run a peer daemon: reserve relay slots on gateways and go direct by hole punching')
    .option('--dial <target>', 'after start, connect to this peer (peer id, station:<name> or multiaddr) and report the path')
    .action(async (options: Record<string, unknown>) => {
      const { peer, logger } = await startPeerFromOptions(options, true)
      if (typeof options.dial === 'string') {
        const target = options.dial
        void waitForGateway(peer).then(async () => { await probe(peer, target, logger) }).catch((err: Error) => {
          printEvent({ event: 'error', message: `dial ${target} failed: ${err.message}` }, options.json === true)
        })
      }
      await runUntilSignal('peer', logger, async () => { await peer.stop() })
    })
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
