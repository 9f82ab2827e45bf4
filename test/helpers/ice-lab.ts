/**
 * ICE mode in the namespace NAT lab: the session lab (test/helpers/session-lab.ts) with the gateway running its TURN
 * server (coturn, supervised by the gateway) beside its STUN server, and session agents in `--mode ice`. Shared by
 * test/lab/ice.test.ts and bench/ice.ts; needs root, coturn (`turnserver`) and a built dist/.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Lab } from './session-lab.ts'
import type { AgentInit, Proc } from './session-lab.ts'

export class IceLab extends Lab {
  private secretDir = ''

  override async start (): Promise<void> {
    this.secretDir = await mkdtemp(join(tmpdir(), 'natmesh-ice-'))
    this.init.gatewayArgs = [...(this.init.gatewayArgs ?? []), '--turn', '--turn-secret-file', join(this.secretDir, 'turn-secret')]
    await super.start()
  }

  override async down (): Promise<void> {
    await super.down()
    if (this.secretDir !== '') await rm(this.secretDir, { recursive: true, force: true })
  }

  /**
   * A session agent in ice mode; its strategy history is kept per slot across trials. `natType` overrides what
   * detection would find (`auto`: detect).
   */
  iceAgent (slot: string, init: AgentInit, name = slot, natType = 'auto'): Proc {
    return this.agent(slot, { ...init, peer: { mode: 'ice', iceHistoryFile: join(this.dir, `${slot}-ice-strategy.json`), iceNatType: natType, ...init.peer } }, name)
  }
}
