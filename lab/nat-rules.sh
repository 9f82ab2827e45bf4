#!/usr/bin/env bash
# Prints the nftables ruleset of a NAT flavour. This script is the single source of the NAT rules: the namespace
# lab (src/lab/nat.ts) and the docker routers (docker/router-entrypoint.sh) both pipe its output into `nft -f -`.
#
# Usage: nat-rules.sh <flavour> <wan-if> <lan-if>
#        nat-rules.sh --list        (prints the flavours, one a line)
#   cone         port-preserving masquerade: endpoint-independent mapping, address+port-dependent filtering
#                (a port-restricted cone NAT)
#   symmetric    masquerade fully-random: a fresh random port for every mapping
#   udp-blocked  like cone, but every UDP packet leaving the WAN is dropped; TCP passes
set -euo pipefail

FLAVOURS=(cone symmetric udp-blocked)

if [[ ${1:-} == --list ]]; then
  printf '%s\n' "${FLAVOURS[@]}"
  exit 0
fi

if [[ $# -ne 3 ]]; then
  echo "usage: $0 <flavour> <wan-if> <lan-if>  (flavours: ${FLAVOURS[*]})" >&2
  exit 2
fi
flavour=$1 wan=$2 lan=$3

# interface names end up inside the ruleset text, so only allow what Linux allows and nft cannot misread
for ifname in "$wan" "$lan"; do
  if [[ ! $ifname =~ ^[A-Za-z0-9_.-]{1,15}$ ]]; then
    echo "invalid interface name: '$ifname'" >&2
    exit 2
  fi
done

udp_block=""
case $flavour in
  cone)        masq="masquerade" ;;
  symmetric)   masq="masquerade fully-random" ;;
  udp-blocked) masq="masquerade"; udp_block="oifname \"$wan\" meta l4proto udp drop" ;;
  *) echo "unknown NAT flavour '$flavour' (expected one of: ${FLAVOURS[*]})" >&2; exit 2 ;;
esac

# Only our own table is replaced (add+delete makes the delete safe when it does not exist yet): a docker
# container's namespace also holds docker's DNS rules, which a `flush ruleset` would wipe.
cat <<NFT
add table ip natmesh
delete table ip natmesh
table ip natmesh {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$wan" $masq
  }
  # like a home router: unsolicited inbound is dropped silently. Dropping it in input also keeps conntrack from
  # confirming an entry for it, which would otherwise clash with (and re-port) a later outbound mapping.
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$wan" ct state established,related accept
    iifname "$wan" drop
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    # conntrack-invalid packets skip NAT; without this they would leave with the private source address
    ct state invalid drop
    $udp_block
    iifname "$lan" oifname "$wan" accept
    iifname "$wan" oifname "$lan" ct state established,related accept
  }
}
NFT
