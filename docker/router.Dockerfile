# NAT router for docker-compose.nat-test.yml. Build context: the repository root.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iproute2 conntrack \
 && rm -rf /var/lib/apt/lists/*
# same layout as the repository, so the entrypoint finds lab/nat-rules.sh beside docker/
COPY lab/nat-rules.sh /natmesh/lab/nat-rules.sh
COPY docker/router-entrypoint.sh /natmesh/docker/router-entrypoint.sh
HEALTHCHECK --interval=2s --timeout=2s --retries=15 CMD nft list table ip natmesh >/dev/null
ENTRYPOINT ["/natmesh/docker/router-entrypoint.sh"]
