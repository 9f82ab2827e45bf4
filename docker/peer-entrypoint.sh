#!/usr/bin/env bash
# Peer container: route everything through this LAN's NAT router, learn the gateway's peer id from its API, then
# run the peer. Extra arguments go to `natmesh peer`.
# env: ROUTER_IP, GATEWAY_IP (default 11.0.113.10), GATEWAY_UDP_PORT (4001), GATEWAY_TCP_PORT (4001),
#      GATEWAY_API_PORT (8080)
set -euo pipefail
: "${ROUTER_IP:?}" "${GATEWAY_IP:=11.0.113.10}" "${GATEWAY_UDP_PORT:=4001}" "${GATEWAY_TCP_PORT:=4001}" "${GATEWAY_API_PORT:=8080}"

# docker gives an internal network no default route; the router is this peer's only way to the internet
ip route replace default via "$ROUTER_IP"

info_url="http://$GATEWAY_IP:$GATEWAY_API_PORT/api/v1/info"
gateway_id=""
for _ in $(seq 60); do
  gateway_id=$(node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => r.json())
      .then((j) => { if (typeof j.peerId !== "string") process.exit(1); console.log(j.peerId) })
      .catch(() => process.exit(1))' "$info_url") && break
  sleep 1
done
[[ -n $gateway_id ]] || { echo "peer: no peer id from $info_url" >&2; exit 1; }

# --gateway is repeatable: the UDP overlay address first, the TCP one as the fallback when UDP is blocked
exec natmesh peer \
  --gateway "/ip4/$GATEWAY_IP/udp/$GATEWAY_UDP_PORT/udx/p2p/$gateway_id" \
  --gateway "/ip4/$GATEWAY_IP/tcp/$GATEWAY_TCP_PORT/p2p/$gateway_id" \
  --json "$@"
