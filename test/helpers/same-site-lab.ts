/**
 * Two hosts behind one NAT, for the namespace lab (test/lab/field-traversal.test.ts and bench/edge.ts): slot
 * `slot`'s NAT router's LAN bridge gets a second host. The NAT does not hairpin, like most home routers.
 * (createTopology's `sameNatAs` builds the same shape as a slot of its own: test/helpers/field-lab.ts uses that.)
 *
 * Imports the compiled lab from dist/ (run `tsc -p tsconfig.json` first); needs root.
 */
import { addNs, addVeth, delNs, ipIn, spawnIn } from '../../dist/lab/netns.js'
import { AGENT, Proc } from './session-lab.ts'
import type { AgentInit, Lab } from './session-lab.ts'

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

/** The NAT router's LAN is a bridge (lan0, src/lab/topology.ts): the mate's link becomes one more port on it. */
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
    await ipIn(nat, ['link', 'set', 'lan1', 'master', 'lan0', 'up'])
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
