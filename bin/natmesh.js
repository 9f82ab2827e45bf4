#!/usr/bin/env node
// natmesh needs Node >= 22 (libp2p 3). npm installs Node 22 as a dependency, so when an older system Node runs
// this file it hands over to that one. Kept plain JavaScript so any Node can read it.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))
const major = Number(process.versions.node.split('.')[0])

if (major >= 22) {
  await import(cli)
} else {
  let node
  try {
    node = join(dirname(createRequire(import.meta.url).resolve('node/package.json')), 'bin', 'node')
  } catch {
    console.error(`natmesh needs Node.js >= 22 (this is ${process.version}); run "npm install" to get it, or install Node 22`)
    process.exit(1)
  }
  // A stop request goes to the child as a message, not as a second signal: a signal sent to the whole process
  // group (systemd's KillMode=control-group, `timeout`, Ctrl-C) reaches the child directly as well, and a daemon
  // takes a repeated signal as "exit now, skip the clean shutdown". See src/cli/daemon.ts.
  const child = spawn(node, [cli, ...process.argv.slice(2)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (child.connected) child.send({ natmeshStop: signal })
      else child.kill(signal)
    })
  }
  child.on('exit', (code, signal) => process.exit(code ?? (signal != null ? 1 : 0)))
}
