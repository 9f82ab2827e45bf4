# natmesh gateway/peer image for docker-compose.nat-test.yml. Build context: the repository root.
FROM node:22-bookworm-slim
# iproute2: the peer entrypoint points the default route at its NAT router
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# npm ci runs the package's prepare script, which compiles src/ to dist/
RUN npm ci \
 && printf '#!/bin/sh\nexec node /app/bin/natmesh.js "$@"\n' > /usr/local/bin/natmesh \
 && chmod +x /usr/local/bin/natmesh
ENTRYPOINT ["natmesh"]
