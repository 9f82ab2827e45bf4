#!/usr/bin/env bash
# Gateway container: drop the default route docker gives every network, internal ones included (without its
# iptables rules nothing else keeps an "internal" network in), then run `natmesh gateway` with the arguments.
set -euo pipefail
ip -4 route del default 2>/dev/null || true
exec natmesh gateway "$@"
