import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'

/** One series of a scraped metric: its label values and its value now. */
export interface Sample<L extends string> { labels: Partial<Record<L, string>>, value: number }

export interface ScrapedInit<L extends string> {
  name: string
  help: string
  labelNames?: readonly L[]
  /** read on every scrape; every series to show, zeros included (so rate() and absent() work from the start) */
  read: () => Array<Sample<L>> | Promise<Array<Sample<L>>>
}

/** A gauge whose series are read from their owner on every scrape, so the owner keeps no metric objects. */
export function scrapedGauge<L extends string = never> (registry: Registry, init: ScrapedInit<L>): void {
  new Gauge<L>({
    name: init.name,
    help: init.help,
    labelNames: init.labelNames ?? [],
    registers: [registry],
    async collect () {
      for (const sample of await init.read()) this.set(sample.labels, sample.value)
    }
  })
}

/**
 * A counter showing totals its owner keeps, read on every scrape. A total that goes down (its owner forgot a closed
 * circuit, say) is shown at its highest, because a Prometheus counter only ever grows.
 */
export function scrapedCounter<L extends string = never> (registry: Registry, init: ScrapedInit<L>): void {
  const shown = new Map<string, number>()
  new Counter<L>({
    name: init.name,
    help: init.help,
    labelNames: init.labelNames ?? [],
    registers: [registry],
    async collect () {
      const samples = await init.read()
      this.reset()
      for (const { labels, value } of samples) {
        const key = JSON.stringify(labels)
        const highest = Math.max(shown.get(key) ?? 0, value)
        shown.set(key, highest)
        this.inc(labels, highest)
      }
    }
  })
}

/** one sample per label value, `read(value)` each */
export function perLabel<L extends string, V extends string> (label: L, values: readonly V[], read: (value: V) => number): Array<Sample<L>> {
  return values.map(value => {
    const labels: Partial<Record<L, string>> = {}
    labels[label] = value
    return { labels, value: read(value) }
  })
}
