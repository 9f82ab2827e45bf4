# NAT router for docker-compose.nat-test.yml, FROM the local Debian base (docker/make-base-image.sh: it has
# nftables, iproute2 and conntrack). Build context: docker/context/router, staged by `npm run docker:stage`.
FROM natmesh-lab/base
# same layout as the repository, so the entrypoint finds lab/nat-rules.sh beside docker/
COPY lab/nat-rules.sh /natmesh/lab/nat-rules.sh
COPY docker/router-entrypoint.sh /natmesh/docker/router-entrypoint.sh
# healthy once every rule (and any netem) is in place; a router whose setup failed has exited
HEALTHCHECK --interval=1s --timeout=2s --retries=30 CMD test -e /run/natmesh-router-ready
ENTRYPOINT ["/natmesh/docker/router-entrypoint.sh"]
