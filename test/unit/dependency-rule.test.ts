import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { cruise } from 'dependency-cruiser'
import type { IConfiguration, ICruiseResult } from 'dependency-cruiser'
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config'
import { describe, expect, it } from 'vitest'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const BAD_LAYOUT = fileURLToPath(new URL('../fixtures/bad-layout/', import.meta.url))
const config = createRequire(import.meta.url)(`${REPO}.dependency-cruiser.cjs`) as IConfiguration

interface Layout { violations: string[], folderCycles: string[][] }

/** src/'s import graph checked against .dependency-cruiser.cjs, plus the cycles between folders (which no rule of its can say) */
async function checkLayout (baseDir: string): Promise<Layout> {
  const tsConfig = extractTSConfig(`${REPO}tsconfig.json`)
  const result = await cruise(['src'], { ...config.options, baseDir, validate: true, ruleSet: { forbidden: config.forbidden }, tsConfig: undefined }, { extensions: ['.ts', '.js'] }, { tsConfig })
  const output = result.output as ICruiseResult
  const violations = output.summary.violations.map(v => `${v.rule.name}: ${v.from} -> ${v.to}`)
  return { violations, folderCycles: folderCycles(output) }
}

/** the strongly connected sets of more than one folder in the graph of src/<folder> -> src/<folder> imports (Tarjan) */
function folderCycles (output: ICruiseResult): string[][] {
  const folderOf = (source: string): string | undefined => /^src\/([^/]+)\//.exec(source)?.[1]
  const edges = new Map<string, Set<string>>()
  for (const module of output.modules) {
    const from = folderOf(module.source)
    if (from == null) continue
    for (const dependency of module.dependencies) {
      const to = folderOf(dependency.resolved)
      if (to == null || to === from) continue
      edges.set(from, (edges.get(from) ?? new Set()).add(to))
    }
  }
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const cycles: string[][] = []
  const visit = (folder: string): void => {
    index.set(folder, index.size)
    low.set(folder, index.get(folder) ?? 0)
    stack.push(folder)
    for (const next of edges.get(folder) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(folder, Math.min(low.get(folder) ?? 0, low.get(next) ?? 0))
      } else if (stack.includes(next)) {
        low.set(folder, Math.min(low.get(folder) ?? 0, index.get(next) ?? 0))
      }
    }
    if (low.get(folder) !== index.get(folder)) return
    const component: string[] = []
    let member: string | undefined
    do {
      member = stack.pop()
      if (member != null) component.push(member)
    } while (member != null && member !== folder)
    if (component.length > 1) cycles.push(component.sort())
  }
  for (const folder of edges.keys()) if (!index.has(folder)) visit(folder)
  return cycles
}

describe('the dependency rule of src/', () => {
  it('holds: no rule broken, no cycle between folders', async () => {
    const layout = await checkLayout(REPO)
    expect(layout.violations).toEqual([])
    expect(layout.folderCycles).toEqual([])
  }, 60_000)

  it('catches a core file reaching into a role and two folders importing each other', async () => {
    const layout = await checkLayout(BAD_LAYOUT)
    expect(layout.violations).toContain('core-stands-alone: src/core/path.ts -> src/peer/peer.ts')
    expect(layout.folderCycles).toEqual([['nat', 'stun']])
  }, 60_000)
})
