import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import type { DashboardSnapshot } from './snapshot.js'

export const DASHBOARD_PATH = '/dashboard'
export const DASHBOARD_API_PATH = '/api/v1/dashboard'

/** the page's files live in dashboard/ at the package root; src/gateway/dashboard and dist/gateway/dashboard both sit three levels down */
const PAGE_DIR = new URL('../../../dashboard/', import.meta.url)
const FILES = [
  { route: DASHBOARD_PATH, file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: `${DASHBOARD_PATH}/dashboard.js`, file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  { route: `${DASHBOARD_PATH}/dashboard.css`, file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  { route: `${DASHBOARD_PATH}/favicon.svg`, file: 'favicon.svg', type: 'image/svg+xml' }
] as const

/** the page loads its own script, style and JSON and nothing else: no inline code, no other origin */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * The gateway dashboard: a static page (plain HTML, CSS and JS, no build step) and the JSON it polls. The
 * files are read once at start-up and served from memory; they never change while the gateway runs.
 */
export function dashboardRoutes (snapshot: () => Promise<DashboardSnapshot>): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    const files = await Promise.all(FILES.map(async (entry) => ({ ...entry, body: await readFile(new URL(entry.file, PAGE_DIR)) })))
    for (const { route, type, body } of files) {
      app.get(route, async (_request, reply) => reply
        .type(type)
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(body))
    }
    app.get(DASHBOARD_API_PATH, async (_request, reply) => reply.header('cache-control', 'no-store').send(await snapshot()))
  }
}
