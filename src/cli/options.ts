import { Option } from 'commander'
import type { Command } from 'commander'
import type { GatewayFlags, PeerFlags } from '../config/index.js'
import { PEER_MODES } from '../config/index.js'

/**
 * Flags carry no defaults here: an unset flag must not override the environment or the YAML file, so
 * defaults live in the config schema alone.
 */
export function addGatewayOptions (command: Command): Command {
  return command
    .option('--config <file>', 'YAML config file (or $NATMESH_CONFIG)')
    .option('--host <ip>', 'IP to listen on (default 0.0.0.0)')
    .option('--udp-port <port>', 'UDP overlay port (default 4001)')
    .option('--tcp-port <port>', 'TCP port (default 4001)')
    .option('--announce <ips...>', 'public IPs to announce (comma-separated or repeated)')
    .option('--api <host:port>', 'HTTP API, /metrics and /healthz (default 127.0.0.1:8080)')
    .option('--bootstrap <multiaddrs...>', 'other gateways to join the station DHT through (ending in /p2p/<id>); one is enough')
    .option('--identity-file <path>', 'key file, created with mode 0600 on first run (default ./.natmesh/gateway.key)')
    .option('--max-reservations <n>', 'relay reservations held at once (default 1024)')
    .option('--reservation-ttl-ms <ms>', 'reservation lifetime (default 7200000)')
    .option('--max-circuits-per-peer <n>', 'concurrent relayed connections one peer may open (default 16)')
    .option('--circuit-duration-ms <ms>', 'lifetime of one relayed connection (default 600000)')
    .option('--circuit-data-bytes <n>', 'bytes one relayed connection may carry (default 67108864)')
    .option('--allowlist <peerIds...>', 'peers whose relayed connections are unlimited')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--json', 'print events as JSON lines on stdout')
}

export function addPeerOptions (command: Command): Command {
  return command
    .option('--config <file>', 'YAML config file (or $NATMESH_CONFIG)')
    .option('--gateway <multiaddrs...>', 'gateway address(es) ending in /p2p/<id>; give UDP and TCP addresses of the same gateway for the TCP fallback')
    .addOption(new Option('--mode <mode>', 'relay-only | opportunistic (default opportunistic)').choices([...PEER_MODES, 'ice']))
    .option('--host <ip>', 'IP to listen on (default 0.0.0.0)')
    .option('--udp-port <port>', 'UDP overlay port (default 0: any)')
    .option('--tcp-port <port>', 'TCP port (default 0: any)')
    .option('--nat-traversal', 'try to go direct (default)')
    .option('--no-nat-traversal', 'never hole punch, stay on the relay')
    .option('--hole-punch-timeout-ms <ms>', 'one hole-punch attempt (default 5000)')
    .option('--hole-punch-retries <n>', 'hole-punch attempts per relayed connection (default 3)')
    .option('--allow-private-addresses', 'hole punch to private (LAN, loopback) addresses too')
    .option('--prefer-direct', 'send new traffic over the direct path when there is one (default)')
    .option('--no-prefer-direct', 'send new traffic over the relay even when a direct path exists')
    .option('--fallback-to-relay', 'keep the relayed connection when hole punching fails (default)')
    .option('--no-fallback-to-relay', 'direct only: close the relayed connection when hole punching fails')
    .option('--station <names...>', 'announce station name(s) in the gateways\' DHT; others reach this peer as station:<name>')
    .option('--station-ttl-ms <ms>', 'station record lifetime, republished halfway (default 600000)')
    .option('--max-gateways <n>', 'keep relay reservations on this many gateways, chosen by health (default 2)')
    .option('--gateway-discovery-interval-ms <ms>', 'how often to ask the DHT for more gateways (default 60000)')
    .option('--gateway-dial-timeout-ms <ms>', 'wait this long for UDP before falling back to TCP (default 5000)')
    .option('--reconnect-initial-delay-ms <ms>', 'first reconnect delay after losing a gateway (default 500)')
    .option('--reconnect-max-delay-ms <ms>', 'reconnect backoff ceiling (default 30000)')
    .option('--api <host:port>', 'local status API: /healthz, /api/v1/status, /api/v1/connections, /api/v1/sessions (off by default)')
    .option('--identity-file <path>', 'key file, created with mode 0600 on first run (default ./.natmesh/peer.key)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--json', 'print events as JSON lines on stdout')
}

type Options = Record<string, unknown>

export function gatewayFlags (options: Options): GatewayFlags {
  const { config: _config, json: _json, ...flags } = options
  return flags as GatewayFlags
}

export function peerFlags (options: Options): PeerFlags {
  const { config: _config, json: _json, gateway, station, dial: _dial, listen: _listen, ...flags } = options
  return {
    ...flags,
    ...(gateway != null ? { gateways: gateway as string[] } : {}),
    ...(station != null ? { stations: station as string[] } : {})
  } as PeerFlags
}
