import { Command } from 'commander'
import { acceptCat, openCat, pipeCat } from '../peer/cat.js'
import { addPeerOptions } from './options.js'
import { startPeerFromOptions, waitForGateway } from './peer-command.js'

export function catCommand (): Command {
  return addPeerOptions(new Command('cat'))
    .description('pipe stdin/stdout to another peer; `cat --listen` waits for one, `cat <target>` connects')
    .argument('[target]', 'peer id (reached through the gateways) or multiaddr')
    .option('--listen', 'wait for one incoming cat and print the address to give the other side')
    .action(async (target: string | undefined, options: Record<string, unknown>) => {
      if ((target == null) === (options.listen !== true)) throw new Error('give either a target or --listen')
      // stdout carries the payload, so peer events go to the log on stderr
      const { peer, logger } = await startPeerFromOptions({ ...options, json: options.json }, false)
      try {
        await waitForGateway(peer)
        let session
        if (target == null) {
          logger.info(`waiting for a cat; on the other side run: natmesh cat ${peer.peerId.toString()} --gateway <same gateway>`)
          for (const addr of peer.relayAddresses()) logger.info(`  or: natmesh cat ${addr.toString()}`)
          session = await acceptCat(peer)
        } else {
          session = await openCat(peer, target, peer.config.natTraversal.holePunchTimeoutMs)
        }
        const result = await pipeCat(peer, session.stream, session.connection, { input: process.stdin, output: process.stdout })
        logger.info(`cat done: ${result.sent} bytes sent, ${result.received} received, path ${result.path} (${session.connection.remoteAddr.toString()})`)
      } finally {
        await peer.stop()
      }
    })
}
