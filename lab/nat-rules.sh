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
#   full-cone    like cone, but once a LAN port has a UDP mapping, anyone may send to it (endpoint-independent
#                filtering): inbound UDP to a mapped port is forwarded to the LAN host that owns the mapping
#   restricted-cone
#                like full-cone, but only from IPs that mapping has sent to (address-dependent filtering)
set -euo pipefail

FLAVOURS=(cone symmetric udp-blocked full-cone restricted-cone)

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

udp_block="" inbound=""
case $flavour in
  cone)        masq="masquerade" ;;
  symmetric)   masq="masquerade fully-random" ;;
  udp-blocked) masq="masquerade"; udp_block="oifname \"$wan\" meta l4proto udp drop" ;;
  full-cone)   masq="masquerade"; inbound="" ;;
  restricted-cone) masq="masquerade"; inbound="ip saddr . udp dport @contacted" ;;
  *) echo "unknown NAT flavour '$flavour' (expected one of: ${FLAVOURS[*]})" >&2; exit 2 ;;
esac

# The cone flavours that let unsolicited UDP in: the rules after masquerade learn which LAN host owns each public
# port (and, for restricted-cone, which IPs that port has sent to); inbound UDP to a known port is forwarded to its
# owner. Port-preserving masquerade keeps the public port equal to the LAN port, so only the address is rewritten.
cone_sets="" cone_chains="" cone_forward=""
if [[ $flavour == full-cone || $flavour == restricted-cone ]]; then
  cone_sets="
  map mappings { type inet_service : ipv4_addr; flags dynamic,timeout; timeout 2m; }
  set contacted { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 2m; }"
  cone_chains="
  chain learn_mappings {
    type filter hook postrouting priority srcnat + 1; policy accept;
    oifname \"$wan\" meta l4proto udp update @mappings { udp sport : ct original ip saddr }
    oifname \"$wan\" meta l4proto udp update @contacted { ip daddr . udp sport }
  }
  chain inbound {
    type nat hook prerouting priority dstnat; policy accept;
    iifname \"$wan\" meta l4proto udp $inbound dnat ip to udp dport map @mappings
  }"
  cone_forward="
    iifname \"$wan\" oifname \"$lan\" ct status dnat accept"
fi

# Only our own table is replaced (add+delete makes the delete safe when it does not exist yet): a docker
# container's namespace also holds docker's DNS rules, which a `flush ruleset` would wipe.
cat <<NFT
add table ip natmesh
delete table ip natmesh
table ip natmesh {$cone_sets$cone_chains
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
    iifname "$wan" oifname "$lan" ct state established,related accept$cone_forward
  }
}
NFT
