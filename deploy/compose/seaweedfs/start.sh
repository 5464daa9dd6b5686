#!/bin/sh
# Entrypoint of the seaweedfs service in docker-compose.yml (mounted at /etc/seaweedfs/start.sh):
# gives the filer and volume HTTP APIs JWT signing keys, then runs the image's own entrypoint.
#
# Without keys the filer (8888) and volume (8080) ports serve every blob, unauthenticated, to
# anything on the compose network; with them they want a token signed with these keys, which
# only weed itself holds, so the S3 gateway (8333, with the access keys) is the way in. weed
# reads WEED_<KEY> for security.toml's <key> ("jwt.filer_signing.read.key" ->
# WEED_JWT_FILER_SIGNING_READ_KEY). A key set in the environment is kept; the others are new
# random ones at every container start (the tokens live 10 s, nothing outside weed holds one).
set -eu

random_key() {
    head -c 32 /dev/urandom | base64 | tr -d '\n='
}

export WEED_JWT_SIGNING_KEY="${WEED_JWT_SIGNING_KEY:-$(random_key)}"
export WEED_JWT_SIGNING_READ_KEY="${WEED_JWT_SIGNING_READ_KEY:-$(random_key)}"
export WEED_JWT_FILER_SIGNING_KEY="${WEED_JWT_FILER_SIGNING_KEY:-$(random_key)}"
export WEED_JWT_FILER_SIGNING_READ_KEY="${WEED_JWT_FILER_SIGNING_READ_KEY:-$(random_key)}"

exec /entrypoint.sh "$@"
