/**
 * Sessions where edge nodes really live: ~100 ms RTT and 2 % loss on every NAT's internet link (the lab's WAN
 * emulator, lab/wan-link.py), fresh peers per transfer (test/helpers/field-lab.ts; bench/field.ts sweeps the rest).
 * Needs root, python3 and a built dist/ (`npm test` builds it).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { runFieldCell } from '../helpers/field-lab.ts'
import type { FieldCellResult, FieldPair } from '../helpers/field-lab.ts'
import { labNamespaces } from '../helpers/lab-runs.js'

const isRoot = process.getuid?.() === 0
const RTT_MS = 100
const LOSS_PERCENT = 2
const TRANSFERS = 3
/**
 * Pairs that punch send until they have been on the direct path for half a second; maxSendMs only ends a transfer
 * whose punch never succeeds, and is long enough that "never" means a bug, not a slow punch (~2-5 s here under
 * load). The same-site pair punches over its LAN (a few LAN round trips); maxSendMs bounds it too.
 */
const PUNCHING = { stopAfterSwitchMs: 500, maxSendMs: 15_000 }
const SAME_SITE = { stopAfterSwitchMs: 500, maxSendMs: 4_000 }

describe.skipIf(!isRoot)(`sessions at ${RTT_MS} ms RTT and ${LOSS_PERCENT} % loss`, () => {
  const prefixes: string[] = []
  const report: string[] = []

  afterAll(() => {
    console.log(`field lab results (${RTT_MS} ms RTT, ${LOSS_PERCENT} % loss):\n  ${report.join('\n  ')}`)
    for (const prefix of prefixes) expect(labNamespaces(prefix)).toEqual([])
  })

  async function cell (pair: FieldPair, send: { stopAfterSwitchMs: number, maxSendMs: number }): Promise<FieldCellResult> {
    const prefix = `nm-fd${process.pid % 10000}${prefixes.length}-`
    prefixes.push(prefix)
    const result = await runFieldCell({ pair, rttMs: RTT_MS, lossPercent: LOSS_PERCENT, transfers: TRANSFERS, prefix, ...send })
    const s = result.summary
    report.push(`${pair}: direct ${s.direct}/${s.transfers} (punched ${s.punched}), relayed -> direct median ${s.relayToDirectMs.median ?? '-'} ms ` +
      `(${s.relayToDirectRtts.median ?? '-'} RTT), open median ${s.openMs.median ?? '-'} ms, intact ${s.intact}/${s.transfers}`)
    return result
  }

  const failures = (r: FieldCellResult, want: (t: FieldCellResult['transfers'][number]) => boolean): string[] =>
    r.transfers.filter((t) => !want(t)).map((t) => `transfer ${t.n}: direct ${t.direct}, punched ${t.punched}, intact ${t.intact}${t.error !== undefined ? `\n${t.error}` : ''}`)

  for (const pair of ['cone-cone', 'cone-symmetric'] as const) {
    it(`${pair}: every session arrives intact and moves to the direct path`, async () => {
      const r = await cell(pair, PUNCHING)
      expect(failures(r, (t) => t.intact && t.direct)).toEqual([])
    }, 120_000)
  }

  it('two hosts behind one NAT: every session arrives intact and moves to the direct path over their LAN', async () => {
    const r = await cell('same-nat', SAME_SITE)
    expect(failures(r, (t) => t.intact && t.direct)).toEqual([])
  }, 120_000)
})
