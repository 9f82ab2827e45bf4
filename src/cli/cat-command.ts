import { Command } from 'commander'
import { acceptCat, CAT_PROTOCOL, pipeCat } from '../peer/cat.js'
import type { Session } from '../upgrade/session.js'
import { addPeerOptions } from './options.js'
import { startPeerFromOptions, waitForGateway } from './peer-command.js'

export function catCommand (): Command {
  return addPeerOptions(new Command('cat'))
    .description('pipe stdin/stdout to another peer over a session; `cat --listen` waits for one, `cat <target>` connects')
    .argument('[target]', 'peer id (reached through the gateways), station:<name> (looked up in the DHT) or multiaddr')
    .option('--listen', 'wait for one incoming cat and print the address to give the other side')
    .action(async (target: string | undefined, options: Record<string, unknown>) => {
      if ((target == null) === (options.listen !== true)) throw new Error('give either a target or --listen')
      // stdout carries the payload, so peer events go to the log on stderr
      const { peer, logger } = await startPeerFromOptions(options, { printEvents: false, throwawayIdentity: true, controlSocket: false })
      try {
        await waitForGateway(peer)
        let session: Session
        if (target == null) {
          logger.info(`waiting for a cat; on the other side run: natmesh cat ${peer.peerId.toString()} --gateway <same gateway>`)
          session = await acceptCat(peer)
        } else {
          session = await peer.openSession(target, CAT_PROTOCOL)
        }
        logger.info(`session ${session.id} with ${session.peer.toString()} on the ${session.path} path`)
        session.addEventListener('path', (evt) => { logger.info(`session moved to the ${evt.detail.path} path`) })
        session.addEventListener('resuming', (evt) => { logger.warn(`session lost its path (${evt.detail.reason}); resuming`) })
        const result = await pipeCat(peer, session, { input: process.stdin, output: process.stdout })
        const stats = session.stats()
        logger.info(`cat done: ${result.sent} bytes sent, ${result.received} received; ${stats.bytesViaDirect} bytes direct, ${stats.bytesViaRelay} via the relay, ${stats.migrations} path change(s)`)
      } finally {
        await peer.stop()
      }
    })
}
