import { execFileSync } from 'node:child_process'

/** The lab namespaces left with this prefix (none, once a run has torn its lab down). */
export function labNamespaces (prefix: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(prefix))
}

/** Runs jobs at most `limit` at a time, results in input order. */
export async function pool<T, R> (items: readonly T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await job(items[i] as T)
    }
  }))
  return results
}
