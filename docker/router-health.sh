#!/usr/bin/env bash
# The router's healthcheck (docker/router.Dockerfile): healthy once router-entrypoint.sh has applied every setting.
# After a failed setup each check is also counted, so the entrypoint can exit once docker has surely marked the
# router unhealthy: a container that exits while still "starting" would look healthy to docker-compose v1, which
# then starts what depends on it.
state=/run/natmesh-router
[[ -e $state/ready ]] && exit 0
[[ -e $state/failed ]] && echo >> "$state/failed-checks"
exit 1
