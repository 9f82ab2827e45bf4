/** One of the gateway's libp2p listen addresses, and the setting that chose its port. */
export interface ListenSetting {
  multiaddr: string
  /** e.g. "UDP port" */
  what: string
  host: string
  port: number
  /** e.g. "--udp-port" */
  flag: string
}

/**
 * libp2p reports a listen address it could not bind as an UnsupportedListenAddressesError whose advice
 * (`transportManager.faultTolerance`) is no natmesh setting. This names the port and the flag instead; other
 * errors pass through unchanged.
 */
export function explainListenFailure (err: unknown, settings: readonly ListenSetting[]): unknown {
  if (!(err instanceof Error) || err.name !== 'UnsupportedListenAddressesError') return err
  const failures = settings.flatMap(setting => {
    const detail = new RegExp(`${escapeRegExp(setting.multiaddr)}: (?:\\w*Error: )?([^\\n]*)`).exec(err.message)?.[1]
    if (detail == null) return []
    const reason = /already in use|EADDRINUSE/i.test(detail) ? 'is already in use' : `cannot be bound (${detail.trim()})`
    return [`${setting.what} ${setting.port} on ${setting.host} ${reason}: choose another with ${setting.flag}`]
  })
  if (failures.length === 0) return err
  return new Error(`gateway cannot listen: ${failures.join('; ')}`, { cause: err })
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
