#!/usr/bin/env bash
# Peer container: route everything through this LAN's NAT router, learn the gateway's peer id from its API, then
# run the peer, its JSON events on stdout and in EVENTS_FILE (which the lab service judges). Extra arguments go to
# `natmesh peer`.
# env: ROUTER_IP, EVENTS_FILE, DIAL_EVENTS_FILE (optional: dial the peer whose events are in that file),
#      GATEWAY_IP (default 11.0.113.10), GATEWAY_UDP_PORT (4001), GATEWAY_TCP_PORT (4001), GATEWAY_API_PORT (8080),
#      NAT_FLAVOUR, DELAY_MS, JITTER_MS, LOSS_PCT (what the router in front does: only logged here, but part of this
#      container's config, so changing them recreates the peer too and it learns its NAT afresh)
set -euo pipefail
: "${ROUTER_IP:?}" "${EVENTS_FILE:?}" "${DIAL_EVENTS_FILE:=}" "${GATEWAY_IP:=11.0.113.10}" "${GATEWAY_UDP_PORT:=4001}"
: "${GATEWAY_TCP_PORT:=4001}" "${GATEWAY_API_PORT:=8080}"

# a restarted container must not offer the previous run's events to the lab
: > "$EVENTS_FILE"
echo "peer: behind router $ROUTER_IP (${NAT_FLAVOUR:-?} NAT, delay ${DELAY_MS:-0} ms, jitter ${JITTER_MS:-0} ms, loss ${LOSS_PCT:-0}%)" >&2

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

dial=()
if [[ -n $DIAL_EVENTS_FILE ]]; then
  # compose starts this peer once the other one is healthy (reserved), so its file holds its current id
  target=$(node -e '
    const lines = require("node:fs").readFileSync(process.argv[1], "utf8").split("\n")
    const started = lines.map((l) => { try { return JSON.parse(l) } catch { return undefined } }).find((e) => e?.event === "started")
    if (typeof started?.peerId !== "string") process.exit(1)
    console.log(started.peerId)' "$DIAL_EVENTS_FILE") || { echo "peer: no peer id in $DIAL_EVENTS_FILE" >&2; exit 1; }
  dial=(--dial "$target")
fi

# --gateway is repeatable: the UDP overlay address first, the TCP one as the fallback when UDP is blocked.
# Run as a child (not exec'd) so its events are all in EVENTS_FILE before anything else happens, with SIGTERM
# passed on for a clean shutdown.
natmesh peer \
  --gateway "/ip4/$GATEWAY_IP/udp/$GATEWAY_UDP_PORT/udx/p2p/$gateway_id" \
  --gateway "/ip4/$GATEWAY_IP/tcp/$GATEWAY_TCP_PORT/p2p/$gateway_id" \
  --json "${dial[@]}" "$@" > >(tee -a "$EVENTS_FILE") &
pid=$!
stopping=""
trap 'stopping=1; kill -TERM "$pid" 2>/dev/null || true' TERM INT
status=0
wait "$pid" || status=$?
# wait returns early (> 128) when a trapped signal arrives: wait again until the daemon has really exited
while kill -0 "$pid" 2>/dev/null; do
  status=0
  wait "$pid" || status=$?
done
if [[ -z $stopping && $status -eq 0 ]]; then
  # a dialler whose check is over: the lab service, not this container, ends the run once it has judged
  echo "peer: natmesh exited 0; staying up until the run is stopped" >&2
  exec sleep infinity
fi
exit "$status"
