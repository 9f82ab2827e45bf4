# NAT router for docker-compose.nat-test.yml, FROM the local Debian base (docker/make-base-image.sh: it has
# nftables, iproute2 and conntrack). Build context: docker/context/router, staged by `npm run docker:stage`.
FROM natmesh-lab/base
# same layout as the repository, so the entrypoint finds lab/nat-rules.sh beside docker/
COPY lab/nat-rules.sh /natmesh/lab/nat-rules.sh
COPY docker/router-entrypoint.sh docker/router-health.sh /natmesh/docker/
# healthy once every rule (and any netem) is in place; 5 retries: setup takes well under a second, and a router
# whose setup failed exits after 7 failed checks (router-entrypoint.sh)
HEALTHCHECK --interval=1s --timeout=2s --retries=5 CMD ["/natmesh/docker/router-health.sh"]
ENTRYPOINT ["/natmesh/docker/router-entrypoint.sh"]
