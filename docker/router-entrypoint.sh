#!/usr/bin/env bash
# NAT router container: applies the lab's NAT rules (lab/nat-rules.sh, shared with the namespace lab) between its
# internet and LAN interfaces, optionally adds netem delay/loss, then idles.
# env: WAN_IP, LAN_IP (this router's addresses), NAT_FLAVOUR (one of `lab/nat-rules.sh --list`, default cone),
#      DELAY_MS, JITTER_MS, LOSS_PCT (netem, applied on both interfaces, so each direction gets it once)
set -euo pipefail
: "${WAN_IP:?}" "${LAN_IP:?}" "${NAT_FLAVOUR:=cone}" "${DELAY_MS:=0}" "${JITTER_MS:=0}" "${LOSS_PCT:=0}"
here=$(dirname "$(readlink -f "$0")")

# docker attaches networks in no fixed order, so find each interface by its address
if_with() {
  local name
  name=$(ip -o -4 addr show to "$1/32" | awk '{ print $2; exit }')
  [[ -n $name ]] || { echo "router: no interface has $1" >&2; exit 1; }
  echo "$name"
}
wan=$(if_with "$WAN_IP")
lan=$(if_with "$LAN_IP")

bash "$here/../lab/nat-rules.sh" "$NAT_FLAVOUR" "$wan" "$lan" | nft -f -
conntrack -F >/dev/null 2>&1 || true
echo "router: $NAT_FLAVOUR NAT, wan=$wan ($WAN_IP) lan=$lan ($LAN_IP)"

if [[ $DELAY_MS != 0 || $LOSS_PCT != 0 ]]; then
  for dev in "$wan" "$lan"; do
    tc qdisc replace dev "$dev" root netem delay "${DELAY_MS}ms" "${JITTER_MS}ms" loss "${LOSS_PCT}%"
  done
  echo "router: netem delay ${DELAY_MS}ms jitter ${JITTER_MS}ms loss ${LOSS_PCT}% each way"
fi

exec sleep infinity
