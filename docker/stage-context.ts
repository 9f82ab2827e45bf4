/**
 * Stages the Docker lab's build contexts in docker/context/ (what `docker compose -f docker-compose.nat-test.yml
 * build` sends to the engine): only what the images need, so the context is tens of MB rather than the whole
 * repository with node_modules (~600 MB). Nothing is downloaded, here or while building:
 *   natmesh/  Dockerfile and natmesh.tar.gz, unpacked by ADD over the base image: usr/local/bin/node (the bundled
 *             Node 22 binary from node_modules/node), usr/local/bin/natmesh, and app/ with package.json, bin/, dist/
 *             (build it first), the peer and gateway entrypoints and the production packages of package-lock.json
 *             (neither dev nor peer-only ones: react-native, a peer of react-native-webrtc, never loads in Node)
 *   router/   Dockerfile, lab/nat-rules.sh, docker/router-entrypoint.sh, docker/router-health.sh
 *
 *   node docker/stage-context.ts     (npm run docker:stage builds dist/ and runs this)
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

interface LockEntry { dev?: boolean, peer?: boolean }

export const REPO = fileURLToPath(new URL('..', import.meta.url))
export const CONTEXT_DIR = join(REPO, 'docker', 'context')

/** node_modules paths of package-lock.json's production packages that are installed here (optional ones may not be) */
export function productionPackages (repo = REPO): string[] {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith('node_modules/') && entry.dev !== true && entry.peer !== true)
    // the image gets Node itself as /usr/local/bin/node; the package's installer is of no use there
    .filter(([path]) => path !== 'node_modules/node' && !path.startsWith('node_modules/node/'))
    .map(([path]) => path)
    .filter((path) => existsSync(join(repo, path)))
}

export function stageContexts (repo = REPO, out = CONTEXT_DIR): void {
  const from = (path: string): string => join(repo, path)
  for (const needed of ['dist/cli/index.js', 'node_modules/node/bin/node']) {
    if (!existsSync(from(needed))) throw new Error(`${needed} is missing: run npm install and npm run build first`)
  }
  rmSync(out, { recursive: true, force: true })
  const copy = (src: string, dest: string): void => {
    mkdirSync(join(dest, '..'), { recursive: true })
    cpSync(src, dest, { recursive: true })
  }

  const natmesh = join(out, 'natmesh')
  copy(from('docker/natmesh.Dockerfile'), join(natmesh, 'Dockerfile'))
  const tree = mkdtempSync(join(tmpdir(), 'natmesh-docker-context-'))
  // the tarball's root is unpacked over the image's /, mode included
  chmodSync(tree, 0o755)
  try {
    copy(from('node_modules/node/bin/node'), join(tree, 'usr/local/bin/node'))
    symlinkSync('/app/bin/natmesh.js', join(tree, 'usr/local/bin/natmesh'))
    for (const path of ['package.json', 'bin', 'dist', 'docker/peer-entrypoint.sh', 'docker/gateway-entrypoint.sh']) copy(from(path), join(tree, 'app', path))
    // a nested package is copied with its parent's folder, minus the parent's other nested packages
    for (const path of productionPackages(repo)) {
      cpSync(from(path), join(tree, 'app', path), {
        recursive: true,
        filter: (src) => src === from(path) || !src.startsWith(join(from(path), 'node_modules'))
      })
    }
    // fastest gzip: the context is sent once over a local socket; -1 already takes it from ~250 MB to ~75 MB
    execFileSync('tar', ['-C', tree, '-I', 'gzip -1', '-cf', join(natmesh, 'natmesh.tar.gz'), '.'])
  } finally {
    rmSync(tree, { recursive: true, force: true })
  }

  const router = join(out, 'router')
  copy(from('docker/router.Dockerfile'), join(router, 'Dockerfile'))
  for (const path of ['lab/nat-rules.sh', 'docker/router-entrypoint.sh', 'docker/router-health.sh']) copy(from(path), join(router, path))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  stageContexts()
  process.stdout.write(`staged ${CONTEXT_DIR}/natmesh and ${CONTEXT_DIR}/router\n`)
}
