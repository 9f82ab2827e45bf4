#!/usr/bin/env bash
# Removes leftover lab namespaces (and kills what still runs inside them), e.g. after a crashed test run.
# Usage: lab/cleanup.sh [prefix]   (default nm-; the prefix must start with nm-, so nothing else is ever touched)
set -euo pipefail
prefix=${1:-nm-}
if [[ $prefix != nm-* || ! $prefix =~ ^[A-Za-z0-9_-]+$ ]]; then
  echo "prefix must start with nm- and use only [A-Za-z0-9_-]" >&2
  exit 2
fi
ip netns list | awk '{ print $1 }' | while read -r ns; do
  [[ $ns == "$prefix"* ]] || continue
  for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del "$ns"
  echo "removed $ns"
done
