import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A firewall in front of one local UDP port: an nftables table of this process's own (never anyone else's rules)
 * that drops every datagram to 127.0.0.1:<port> and counts them. Needs root and nft.
 */
export class BlockedUdpPort {
  private constructor (private readonly table: string) {}

  static async drop (port: number): Promise<BlockedUdpPort> {
    const table = `nm_blocked_udp_${process.pid}_${port}`
    await run('nft', ['add', 'table', 'inet', table])
    const blocked = new BlockedUdpPort(table)
    try {
      await run('nft', ['add', 'chain', 'inet', table, 'input', '{ type filter hook input priority -10 ; }'])
      await run('nft', ['add', 'rule', 'inet', table, 'input', 'ip', 'daddr', '127.0.0.1', 'udp', 'dport', String(port), 'counter', 'drop'])
    } catch (err) {
      await blocked.remove()
      throw err
    }
    return blocked
  }

  /** datagrams dropped so far */
  async dropped (): Promise<number> {
    const { stdout } = await run('nft', ['-j', 'list', 'table', 'inet', this.table])
    const entries = (JSON.parse(stdout) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> }).nftables
    return entries.flatMap(entry => entry.rule?.expr ?? []).reduce((sum, expr) => sum + (expr.counter?.packets ?? 0), 0)
  }

  async remove (): Promise<void> {
    await run('nft', ['delete', 'table', 'inet', this.table])
  }
}
