#!/usr/bin/env bash
# Installs (Debian packages, once) and starts the shared services a cluster of cachepoint gateways uses, on
# loopback, with their data under ~/.cache/cachepoint/services (/var/lib/cachepoint/services as root).
# Idempotent: a running service is left as is.
#   scripts/services.sh postgres   → prints postgresql://cachepoint@127.0.0.1:PORT/cachepoint
#   scripts/services.sh redis      → prints redis://127.0.0.1:PORT/0
# PostgreSQL refuses to run as root, so as root its cluster belongs to the `postgres` user Debian creates
# (and lives where that user can reach it: not under /root).
set -euo pipefail
if [ "$(id -u)" = 0 ]; then default=/var/lib/cachepoint/services; else default=$HOME/.cache/cachepoint/services; fi
SERVICES=${CACHEPOINT_SERVICES:-$default}
PG_PORT=${CACHEPOINT_PG_PORT:-54329}
REDIS_PORT=${CACHEPOINT_REDIS_PORT:-63799}

install() {  # $1: a command that must exist, $2: the Debian package providing it
  if ! command -v "$1" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$1" >/dev/null 2>&1; then
    echo "installing $2 (once)" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get install -y -q "$2" || (apt-get update -q && apt-get install -y -q "$2")) >&2
  fi
}

postgres() {
  install initdb postgresql
  local bin data as=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  data=$SERVICES/postgres
  mkdir -p "$SERVICES"
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; chmod 755 "$SERVICES"; fi
    "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >&2
  fi
  if ! "${as[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "${as[@]}" "$bin/pg_ctl" -D "$data" -w -l "$data/server.log" \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$data" start >&2
  fi
  local psql=("${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'cachepoint'")" ]; then
    "${psql[@]}" -c "CREATE ROLE cachepoint LOGIN CREATEDB" >&2
  fi
  if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'cachepoint'")" ]; then
    "${psql[@]}" -c "CREATE DATABASE cachepoint OWNER cachepoint" >&2
  fi
  echo "postgresql://cachepoint@127.0.0.1:$PG_PORT/cachepoint"
}

redis() {
  install redis-server redis-server
  local data=$SERVICES/redis
  mkdir -p "$data"
  # Debian starts no daemon in a container; this one is ours: loopback only, no persistence (the directory
  # is a cache: gateways fall back to cold prefills while it is empty or away).
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$data" --save "" --appendonly no \
      --logfile "$data/redis.log" --pidfile "$data/redis.pid" >&2
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  echo "redis://127.0.0.1:$REDIS_PORT/0"
}

for service in "${@:-postgres}"; do
  "$service"
done
