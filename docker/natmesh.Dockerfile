# natmesh gateway/peer/lab image for docker-compose.nat-test.yml, FROM the local Debian base
# (docker/make-base-image.sh). Build context: docker/context/natmesh, staged by `npm run docker:stage`; its tarball
# holds the bundled Node 22 binary, the natmesh command, and /app (dist/, production node_modules). No RUN step:
# nothing is installed or downloaded while building.
FROM natmesh-lab/base
ADD natmesh.tar.gz /
WORKDIR /app
ENTRYPOINT ["natmesh"]
