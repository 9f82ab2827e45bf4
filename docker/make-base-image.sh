#!/usr/bin/env bash
# Makes natmesh-lab/base, the image both lab images build FROM, with no image registry: a minimal Debian bookworm
# (debootstrap, from the Debian mirror apt uses) with the routers' tools, imported with `docker import`.
#
#   docker/make-base-image.sh [--cache FILE]
#
# --cache FILE: a tarball of the root filesystem; imported if it exists, written after a fresh debootstrap if not
# (saves the ~60 s debootstrap on reruns). DEBIAN_MIRROR names the mirror (default: the Debian archive apt uses).
# Needs root and debootstrap (apt-get install debootstrap); talks to the Docker engine $DOCKER_HOST names.
set -euo pipefail
image=natmesh-lab/base
# the Debian archive apt is set up with (deb822 .sources or one-line .list files), not its security archive
apt_mirror () {
  # some of these files do not exist, and under pipefail that must not fail the lookup
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    awk '($1 == "URIs:" || $1 == "deb") && $2 ~ /\/debian\/?$/ && found == "" { found = $2 } END { print found }'
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
cache=""
case "${1:-}" in
  --cache) cache=${2:?--cache needs a file}; [[ $# -eq 2 ]] || { echo "usage: $0 [--cache FILE]" >&2; exit 2; } ;;
  "") ;;
  *) echo "usage: $0 [--cache FILE]" >&2; exit 2 ;;
esac

if [[ -n $cache && -s $cache ]]; then
  docker import - "$image" < "$cache" >/dev/null
  echo "$image imported from $cache"
  exit 0
fi

[[ -n $mirror ]] || { echo "$0: no Debian archive in apt's sources: set DEBIAN_MIRROR" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "$0: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
root=$(mktemp -d /tmp/natmesh-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
# iproute2 (ip, tc), nftables, conntrack: the routers' NAT; bash, coreutils and grep come with minbase
debootstrap --variant=minbase --include=iproute2,nftables,conntrack bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; rm -f "$root.log"; echo "$0: debootstrap failed" >&2; exit 1; }
rm -f "$root.log"
# what a container never reads: downloaded packages, package lists, docs, translations
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/{doc,man,info,locale}
if [[ -n $cache ]]; then
  tar -C "$root" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
  docker import - "$image" < "$cache" >/dev/null
else
  tar -C "$root" -c . | docker import - "$image" >/dev/null
fi
echo "$image made from Debian bookworm ($mirror)"
