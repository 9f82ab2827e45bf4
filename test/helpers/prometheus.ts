import { spawnSync } from 'node:child_process'

/** One sample of Prometheus text exposition: `name{labels} value` */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Scrapes `url` and returns its text and its samples. */
export async function scrape (url: string): Promise<{ text: string, samples: Sample[], families: Set<string> }> {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`)
  const text = await response.text()
  return { text, samples: parseSamples(text), families: families(text) }
}

/** the metric names a `# TYPE` line declares (a histogram's is its base name) */
function families (text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map(match => match[1] as string))
}

function parseSamples (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match == null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[label[1] as string] = label[2] as string
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) })
  }
  return samples
}

/** the value of the one sample named `name` whose labels include `labels`; undefined when there is none */
export function valueOf (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(sample => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value
}

/** The families whose names start with `prefix`, HELP and TYPE lines included, as a text of their own. */
export function familiesStartingWith (text: string, prefix: string): string {
  return text.split('\n').filter(line => line.replace(/^# (HELP|TYPE) /, '').startsWith(prefix)).join('\n') + '\n'
}

/** `promtool check metrics` on `text` (Prometheus's own linter: naming, units, suffixes, help) */
export function promtoolCheck (text: string): { ok: boolean, output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  if (result.error != null) throw new Error(`promtool (Debian package prometheus) cannot run: ${result.error.message}`)
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` }
}
