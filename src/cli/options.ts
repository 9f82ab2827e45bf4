import { Option } from 'commander'
import type { Command } from 'commander'
import type { GatewayFlags, PeerFlags } from '../config/index.js'
import { NAT_MAPPINGS, PEER_MODES } from '../config/index.js'

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
    .option('--dashboard', 'serve the dashboard page at /dashboard on the HTTP API (default off)')
    .option('--bootstrap <multiaddrs...>', 'other gateways to join the station DHT through (ending in /p2p/<id>); one is enough')
    .option('--identity-file <path>', 'key file, created with mode 0600 on first run (default ./.natmesh/gateway.key)')
    .option('--max-reservations <n>', 'relay reservations held at once (default 1024)')
    .option('--reservation-ttl-ms <ms>', 'reservation lifetime (default 7200000)')
    .option('--reservation-grace-ms <ms>', 'how long a disconnected peer keeps its reservation (default 10000)')
    .option('--max-circuits-per-peer <n>', 'concurrent relayed connections one peer may open (default 16)')
    .option('--circuit-duration-ms <ms>', 'lifetime of one relayed connection (default 600000)')
    .option('--circuit-data-bytes <n>', 'bytes one relayed connection may carry (default 67108864)')
    .option('--allowlist <peerIds...>', 'peers whose relayed connections are unlimited')
    .option('--relay-forwarding', 'forward circuits between natmesh peers on the UDP overlay inside udx, end-to-end encrypted (default)')
    .option('--no-relay-forwarding', 'relay every circuit as circuit relay v2 through the gateway\'s noise and yamux')
    .option('--relay-workers <n>', 'threads that forward circuits, each on its own core and UDP port; 0 = on the main event loop (default: 0, or cores - 1 (at most 4) once --relay-worker-port is set)')
    .option('--relay-worker-port <port>', 'UDP port of the first relay worker, the next ones follow (default 0: ephemeral ports)')
    .option('--connections-per-ip-per-second <n>', 'new inbound connections per second from one IP (default 200)')
    .option('--max-pending-connections <n>', 'inbound connections in their handshake at once (default 1024)')
    .option('--max-pending-connections-per-ip <n>', 'of those, from one IP (default 128)')
    .option('--max-pending-udp-setups-per-ip <n>', 'unconfirmed UDP overlay set-ups one IP may hold (default 64)')
    .option('--udp-setups-per-ip-per-second <n>', 'new UDP overlay set-ups per second from one IP, 0 = unlimited (default 200)')
    .option('--stun', 'run the STUN server (default)')
    .option('--no-stun', 'do not run the STUN server')
    .option('--stun-port <port>', 'STUN port (default 3478)')
    .option('--stun-other-port <port>', 'second STUN port for NAT behaviour tests (default 3479)')
    .option('--stun-alternate-address <ip>', 'a second IP of this host, so peers can tell full from restricted cone NATs')
    .option('--stun-rate-per-second <n>', 'STUN requests per second per source IP, 0 = unlimited (default 100)')
    .option('--stun-burst <n>', 'STUN requests a source IP may send at once (default 200)')
    .option('--turn', 'run coturn as this gateway\'s TURN server (needs the coturn package)')
    .option('--turn-port <port>', 'TURN port, UDP and TCP (default 3480)')
    .option('--turn-external-ip <ip>', 'address in the turn: URLs handed out (default the first --announce)')
    .option('--turn-secret-file <path>', 'TURN shared secret, created with mode 0600 on first run (default ./.natmesh/turn-secret)')
    .option('--ice-cors-origin <origins...>', 'web origins whose pages may fetch /api/v1/ice/servers cross-origin, e.g. https://app.example.com (comma-separated or repeated; default none)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--json', 'print events as JSON lines on stdout')
}

export function addPeerOptions (command: Command): Command {
  return command
    .option('--config <file>', 'YAML config file (or $NATMESH_CONFIG)')
    .option('--gateway <multiaddrs...>', 'gateway address(es) ending in /p2p/<id>; give UDP and TCP addresses of the same gateway for the TCP fallback')
    .addOption(new Option('--mode <mode>', 'relay-only | opportunistic | ice (default opportunistic)').choices([...PEER_MODES]))
    .option('--host <ip>', 'IP to listen on (default 0.0.0.0)')
    .option('--udp-port <port>', 'UDP overlay port (default 0: any)')
    .option('--tcp-port <port>', 'TCP port (default 0: any)')
    .option('--nat-traversal', 'try to go direct (default)')
    .option('--no-nat-traversal', 'never hole punch, stay on the relay')
    .option('--hole-punch-timeout-ms <ms>', 'one hole-punch attempt (default 5000)')
    .option('--hole-punch-retries <n>', 'hole-punch attempts per relayed connection (default 3)')
    .option('--allow-private-addresses', 'hole punch to private (LAN, loopback) addresses too')
    .addOption(new Option('--nat-mapping <kind>', 'how this NAT maps ports (default auto: learnt from the gateways)').choices([...NAT_MAPPINGS]))
    .option('--nat-mapping-delta <n>', 'the step between mappings, with --nat-mapping sequential')
    .option('--no-birthday', 'never birthday punch through a symmetric NAT')
    .option('--birthday-sockets <n>', 'sockets a birthday punch opens behind a symmetric NAT (default 256)')
    .option('--birthday-probes-per-second <n>', 'probe rate of the other side of a birthday punch (default 1000)')
    .option('--birthday-max-probes <n>', 'probes one birthday attempt sends at most (default 4000)')
    .option('--birthday-time-budget-ms <ms>', 'how long one birthday attempt may take (default 6000)')
    .option('--prefer-direct', 'send new traffic over the direct path when there is one (default)')
    .option('--no-prefer-direct', 'send new traffic over the relay even when a direct path exists')
    .option('--fallback-to-relay', 'keep the relayed connection when hole punching fails (default)')
    .option('--no-fallback-to-relay', 'direct only: close the relayed connection when hole punching fails')
    .option('--early-dial', 'with each forwarded circuit, exchange overlay mappings through the gateway and dial before DCUtR (default)')
    .option('--no-early-dial', 'learn the other peer\'s address from DCUtR only; the gateway passes ours to nobody')
    .option('--nat-detection', 'detect the NAT type with the gateways\' STUN servers at start-up (default)')
    .option('--no-nat-detection', 'skip NAT type detection')
    .option('--nat-detection-cache-ms <ms>', 'how long a NAT type report stays fresh (default 300000)')
    .option('--stun-ports <ports...>', 'the gateways\' STUN ports, primary and other (default 3478,3479)')
    .option('--station <names...>', 'announce station name(s) in the gateways\' DHT; others reach this peer as station:<name>')
    .option('--station-ttl-ms <ms>', 'station record lifetime, republished halfway (default 600000)')
    .option('--max-gateways <n>', 'keep relay reservations on this many gateways, chosen by health (default 2)')
    .option('--gateway-discovery-interval-ms <ms>', 'how often to ask the DHT for more gateways (default 60000)')
    .option('--gateway-dial-timeout-ms <ms>', 'give up one gateway address after this long; TCP is raced 250 ms behind UDP (default 5000)')
    .option('--gateway-udp-retry-ms <ms>', 'while a gateway link runs over TCP, try UDP again this often (default 30000)')
    .option('--reconnect-initial-delay-ms <ms>', 'first reconnect delay after losing a gateway (default 500)')
    .option('--reconnect-max-delay-ms <ms>', 'reconnect backoff ceiling (default 30000)')
    .option('--ice-history-file <path>', 'ice mode: strategy history and adaptive timeouts (default ./.natmesh/ice-strategy.json)')
    .option('--ice-nat-type <type>', 'ice mode: auto (detect) or this peer\'s known NAT type: no-nat, full-cone, restricted-cone, port-restricted-cone, symmetric, udp-blocked (default auto)')
    .option('--ice-servers <urls...>', 'ice mode: extra STUN URLs tried after the gateways\' own (comma-separated or repeated)')
    .option('--api <host:port>', 'local status API: /healthz, /api/v1/status, /api/v1/connections, /api/v1/sessions, /metrics (off by default)')
    .option('--identity-file <path>', 'key file, created with mode 0600 on first run (default ./.natmesh/peer.key)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--json', 'print events as JSON lines on stdout')
}

type Options = Record<string, unknown>

export function gatewayFlags (options: Options): GatewayFlags {
  const { config: _config, json: _json, printConfig: _print, ...flags } = options
  return flags as GatewayFlags
}

export function peerFlags (options: Options): PeerFlags {
  const { config: _config, json: _json, printConfig: _print, gateway, station, dial: _dial, listen: _listen, ...flags } = options
  return {
    ...flags,
    ...(gateway != null ? { gateways: gateway as string[] } : {}),
    ...(station != null ? { stations: station as string[] } : {})
  } as PeerFlags
}
