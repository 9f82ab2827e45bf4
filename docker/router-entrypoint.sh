#!/usr/bin/env bash
# NAT router container: applies the lab's NAT rules (lab/nat-rules.sh, shared with the namespace lab) between its
# internet and LAN interfaces, optionally adds netem delay/loss, marks itself ready (the healthcheck) and idles.
# A setting it cannot apply stops it with exit code 1, once its healthcheck (router-health.sh) has failed: the
# router never turns healthy, so nothing behind it starts and `docker compose up` fails rather than measure a lab
# that is not the one asked for.
# env: WAN_IP, LAN_IP (this router's addresses), NAT_FLAVOUR (one of `lab/nat-rules.sh --list`, default cone),
#      DELAY_MS, JITTER_MS, LOSS_PCT (netem, applied on both interfaces, so each direction gets it once)
set -euo pipefail
: "${WAN_IP:?}" "${LAN_IP:?}" "${NAT_FLAVOUR:=cone}" "${DELAY_MS:=0}" "${JITTER_MS:=0}" "${LOSS_PCT:=0}"
here=$(dirname "$(readlink -f "$0")")
state=/run/natmesh-router
rm -rf "$state" && mkdir -p "$state"
# the Dockerfile's HEALTHCHECK --retries, and two to spare
unhealthy_after=7

fail() {
  echo "router: $*" >&2
  touch "$state/failed"
  while (( $(wc -l 2>/dev/null < "$state/failed-checks" || echo 0) < unhealthy_after )); do sleep 0.2; done
  exit 1
}

for knob in DELAY_MS JITTER_MS; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || fail "$knob=${!knob}: expected a whole number of milliseconds"
done
[[ $LOSS_PCT =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "LOSS_PCT=$LOSS_PCT: expected a percentage"

# docker attaches networks in no fixed order, so find each interface by its address
if_with() {
  local name
  name=$(ip -o -4 addr show to "$1/32" | awk '{ print $2; exit }')
  [[ -n $name ]] || fail "no interface has $1"
  echo "$name"
}
wan=$(if_with "$WAN_IP")
lan=$(if_with "$LAN_IP")
# the lab has no way out: docker gives even an internal network a default route (via its bridge on the host), and
# without docker's iptables rules nothing else stops a router from forwarding there
ip -4 route del default 2>/dev/null || true
[[ -z $(ip -4 route show default) ]] || fail "cannot drop its default route ($(ip -4 route show default))"

rules=$(bash "$here/../lab/nat-rules.sh" "$NAT_FLAVOUR" "$wan" "$lan") || fail "NAT_FLAVOUR=$NAT_FLAVOUR: not a flavour lab/nat-rules.sh knows"
nft -f - <<<"$rules"
conntrack -F >/dev/null 2>&1 || true
echo "router: $NAT_FLAVOUR NAT, wan=$wan ($WAN_IP) lan=$lan ($LAN_IP)"

if (( 10#$DELAY_MS > 0 || 10#$JITTER_MS > 0 )) || awk -v loss="$LOSS_PCT" 'BEGIN { exit !(loss > 0) }'; then
  for dev in "$wan" "$lan"; do
    if ! err=$(tc qdisc replace dev "$dev" root netem delay "${DELAY_MS}ms" "${JITTER_MS}ms" loss "${LOSS_PCT}%" 2>&1); then
      fail "cannot apply DELAY_MS=$DELAY_MS JITTER_MS=$JITTER_MS LOSS_PCT=$LOSS_PCT: tc netem failed ($err)." \
        "This kernel has no netem (module sch_netem): run without the delay/loss settings, or on a host whose kernel has netem."
    fi
  done
  echo "router: netem delay ${DELAY_MS}ms jitter ${JITTER_MS}ms loss ${LOSS_PCT}% each way"
fi

touch "$state/ready"
exec sleep infinity
