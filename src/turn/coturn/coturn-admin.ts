import { readFile, rm } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'

/** where coturn's admin CLI (telnet) listens, and its password; loopback only */
export interface CoturnCliEndpoint {
  host: string
  port: number
  password: string
}

export interface CoturnSession {
  /** coturn's session id, as `cs` takes it */
  id: string
  username: string
}

const PROMPT = '> '
const PASSWORD_PROMPT = 'Enter password: '
const IAC = 255
const SB = 250
const SE = 240
/** IAC WILL/WONT/DO/DONT carry one option byte */
const OPTION_COMMANDS = new Set([251, 252, 253, 254])

/**
 * Talks to coturn's admin CLI, the one way to end an allocation from outside: coturn checks a REST API
 * credential's expiry only when a client first authenticates, then keeps its key for the allocation's life.
 * One connection per call; coturn's CLI is a telnet service, whose option negotiation is skipped here.
 */
export class CoturnAdmin {
  constructor (private readonly endpoint: CoturnCliEndpoint, private readonly dumpFile: string) {}

  /** every session coturn holds (`psd` dumps them all to a file; `ps` on the socket stops at cli-max-output-sessions) */
  async sessions (): Promise<CoturnSession[]> {
    await rm(this.dumpFile, { force: true })
    await this.run([`psd ${this.dumpFile}`])
    const dump = await readFile(this.dumpFile, 'utf8')
    return [...dump.matchAll(/^\s*\d+\) id=(\d+), user <(.*)>:$/gm)].map(match => ({ id: match[1] as string, username: match[2] as string }))
  }

  /** ends these sessions and their allocations */
  async cancel (ids: string[]): Promise<void> {
    if (ids.length > 0) await this.run(ids.map(id => `cs ${id}`))
  }

  private async run (commands: string[]): Promise<void> {
    const socket = connect(this.endpoint.port, this.endpoint.host)
    socket.setTimeout(5000)
    try {
      const session = new CliSession(socket)
      await session.until(PASSWORD_PROMPT)
      await session.send(this.endpoint.password)
      for (const command of commands) await session.send(command)
      socket.end('quit\r\n')
    } finally {
      socket.destroy()
    }
  }
}

/** reads coturn's CLI output as text (telnet commands dropped) and waits for its prompts */
class CliSession {
  private text = ''
  private waiter?: () => void
  private failure?: Error

  constructor (private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.text += withoutTelnetCommands(chunk)
      this.waiter?.()
    })
    const fail = (err: Error): void => {
      this.failure ??= err
      this.waiter?.()
    }
    socket.on('error', fail)
    socket.on('timeout', () => { fail(new Error('coturn CLI did not answer within 5 s')) })
    socket.on('close', () => { fail(new Error('coturn CLI closed the connection (wrong password?)')) })
  }

  /** sends one line, then waits for the next prompt */
  async send (line: string): Promise<void> {
    this.text = ''
    this.socket.write(`${line}\r\n`)
    await this.until(PROMPT)
  }

  async until (marker: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.text.includes(marker)) {
          this.waiter = undefined
          this.text = ''
          resolve()
        } else if (this.failure != null) {
          this.waiter = undefined
          reject(this.failure)
        }
      }
      this.waiter = check
      check()
    })
  }
}

function withoutTelnetCommands (chunk: Buffer): string {
  const bytes: number[] = []
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i] as number
    if (byte !== IAC) {
      bytes.push(byte)
    } else if (chunk[i + 1] === SB) {
      // a subnegotiation runs to IAC SE
      i += 2
      while (i < chunk.length && !(chunk[i] === IAC && chunk[i + 1] === SE)) i++
      i++
    } else if (chunk[i + 1] === IAC) {
      bytes.push(IAC)
      i++
    } else {
      i += OPTION_COMMANDS.has(chunk[i + 1] as number) ? 2 : 1
    }
  }
  return Buffer.from(bytes).toString('latin1')
}

/** a TCP port free on `host` right now, for coturn's CLI (coturn cannot be told to pick one itself) */
export async function freeTcpPort (host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const address = server.address()
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  if (address == null || typeof address === 'string') throw new Error(`no TCP port free on ${host}`)
  return address.port
}
