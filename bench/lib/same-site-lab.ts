/**
 * Two hosts behind one NAT, for the namespace lab (test/lab/field-traversal.test.ts and bench/edge.ts): slot
 * `slot`'s NAT router gets a LAN bridge with a second host on it. The NAT does not hairpin, like most home routers.
 *
 * Imports the compiled lab from dist/ (run `tsc -p tsconfig.json` first); needs root.
 */
import { natRuleset } from '../../dist/lab/nat.js'
import { addNs, addVeth, delNs, execIn, ipIn, spawnIn } from '../../dist/lab/netns.js'
import { AGENT, Proc } from './upgrade-lab.ts'
import type { AgentInit, Lab } from './upgrade-lab.ts'

export interface LanMate {
  /** the second host's namespace, `<prefix>mate<slot>` */
  ns: string
  /** its address, 192.168.<n>.3 (the slot's own peer is .2) */
  ip: string
  /** session-agent.ts in the mate's namespace (which the topology does not know, so it is started here) */
  agent: (init: AgentInit, name: string) => Proc
  /** any command in the mate's namespace; stopped by remove() */
  spawnProcess: (name: string, command: string, args: string[]) => Proc
  /** stops the mate's agents and removes its namespace; call before lab.down() */
  remove: () => Promise<void>
}

/**
 * The NAT router's LAN port becomes a bridge (lanbr0) holding the slot peer's link and a new one to the mate, and
 * the slot's NAT rules (cone) are reapplied for the bridge.
 */
export async function addLanMate (lab: Lab, slot: string): Promise<LanMate> {
  const nat = lab.topo.nat(slot)
  const ns = `${lab.init.prefix}mate${slot}`
  const routerIp = lab.topo.peerIp(slot).replace(/\.2$/, '.1')
  const ip = lab.topo.peerIp(slot).replace(/\.2$/, '.3')
  const procs = new Set<Proc>()
  const remove = async (): Promise<void> => {
    await Promise.all([...procs].map(async p => { await p.stop(0) }))
    await delNs(ns).catch(() => {})
  }
  await addNs(ns)
  try {
    await addVeth(nat, 'lan1', ns, 'eth0')
    // bridged frames must not cross the router's IPv4 filter (br_netfilter, when loaded, would send them there)
    await execIn(nat, ['sh', '-c', 'test ! -e /proc/sys/net/bridge/bridge-nf-call-iptables || sysctl -q -w net.bridge.bridge-nf-call-iptables=0'])
    await ipIn(nat, ['link', 'add', 'lanbr0', 'type', 'bridge'])
    await ipIn(nat, ['addr', 'del', `${routerIp}/24`, 'dev', 'lan0'])
    await ipIn(nat, ['link', 'set', 'lan0', 'master', 'lanbr0'])
    await ipIn(nat, ['link', 'set', 'lan1', 'master', 'lanbr0', 'up'])
    await ipIn(nat, ['addr', 'add', `${routerIp}/24`, 'dev', 'lanbr0'])
    await ipIn(nat, ['link', 'set', 'lanbr0', 'up'])
    await execIn(nat, ['nft', '-f', '-'], { input: natRuleset('cone', 'wan0', 'lanbr0') })
    await ipIn(ns, ['addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    await ipIn(ns, ['link', 'set', 'eth0', 'up'])
    await ipIn(ns, ['route', 'add', 'default', 'via', routerIp])
  } catch (err) {
    await remove()
    throw err
  }
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('NATMESH_')) env[key] = value
  const spawnProcess = (name: string, command: string, args: string[]): Proc => {
    const proc = new Proc(name, spawnIn(ns, command, args, { stdio: ['pipe', 'pipe', 'pipe'], env }))
    procs.add(proc)
    void proc.exited.then(() => { procs.delete(proc) })
    return proc
  }
  const agent = (init: AgentInit, name: string): Proc => spawnProcess(name, process.execPath, [AGENT, JSON.stringify({ gateways: lab.gatewayAddrs, ...init })])
  return { ns, ip, agent, spawnProcess, remove }
}
