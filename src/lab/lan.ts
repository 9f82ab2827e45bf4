import { addVeth, ipIn } from './netns.js'
import { WAN_PREFIX_LEN } from './addressing.js'
import { flushConntrack, LAN_IF, WAN_IF } from './nat.js'

/** A router namespace's LAN: a bridge named LAN_IF holding the router's address. */
export async function addLanBridge (router: string, routerIp: string): Promise<void> {
  await ipIn(router, ['link', 'add', LAN_IF, 'type', 'bridge'])
  await ipIn(router, ['addr', 'add', `${routerIp}/24`, 'dev', LAN_IF])
  await ipIn(router, ['link', 'set', LAN_IF, 'up'])
}

/** Plugs `host` into the router's LAN bridge (port `port`) with address `ip` and a default route via the router. */
export async function plugIntoLan (router: string, port: string, routerIp: string, host: string, hostIf: string, ip: string): Promise<void> {
  await addVeth(router, port, host, hostIf)
  await ipIn(router, ['link', 'set', port, 'master', LAN_IF, 'up'])
  await ipIn(host, ['addr', 'add', `${ip}/24`, 'dev', hostIf])
  await ipIn(host, ['link', 'set', hostIf, 'up'])
  await ipIn(host, ['route', 'add', 'default', 'via', routerIp])
}

/**
 * Unplugs `host` from whatever LAN it is on and plugs it into another router's: what a laptop moving to another
 * network goes through. Deleting the host's end removes the pair's other end from the old router at once; the
 * host's sockets (bound to the wildcard address) survive and now leave through the new router.
 */
export async function moveToLan (host: string, hostIf: string, router: string, port: string, routerIp: string, ip: string): Promise<void> {
  await ipIn(host, ['link', 'del', hostIf])
  await plugIntoLan(router, port, routerIp, host, hostIf, ip)
}

/**
 * A NAT router restart that brings new mappings: its WAN side comes back with another address (as an ISP hands
 * out after a reboot) and every conntrack entry, so every mapping, is gone.
 */
export async function renumberWan (router: string, from: string, to: string): Promise<void> {
  await ipIn(router, ['addr', 'del', `${from}/${WAN_PREFIX_LEN}`, 'dev', WAN_IF])
  await ipIn(router, ['addr', 'add', `${to}/${WAN_PREFIX_LEN}`, 'dev', WAN_IF])
  await flushConntrack(router)
}
