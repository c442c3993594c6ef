#!/usr/bin/env bash
# Run the test suite against real PostgreSQL and Redis (what `make test` and CI run).
#
# DATABASE_URL / REDIS_URL from the environment are used when set. Otherwise this starts
# throwaway servers on 127.0.0.1 (free ports, data in a temp dir, no fsync, nothing persisted),
# runs pytest with both URLs set, and stops the servers however pytest ends.
# Arguments go to pytest: scripts/test.sh tests/characters/clips/test_worker.py -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-.venv/bin/python}
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cps-test.XXXXXX")
chmod 755 "$WORK_DIR"  # the postgres user must reach its data dir inside
PG_DIR="$WORK_DIR/postgresql"
PG_BIN=""
PG_STARTED=""
REDIS_PORT=""

log() { printf '[test.sh] %s\n' "$*" >&2; }

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root: as root, run its tools as the `postgres` system user.
as_postgres() {
  if [[ $EUID -eq 0 ]]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

cleanup() {
  local status=$?
  if [[ -n $PG_STARTED ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [[ -n $REDIS_PORT && -f "$WORK_DIR/redis.pid" ]]; then
    local pid
    pid=$(cat "$WORK_DIR/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK_DIR" 2>/dev/null || { sleep 1; rm -rf "$WORK_DIR"; }
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_postgresql() {
  PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -z $PG_BIN ]]; then
    PG_BIN=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /missing/pg_ctl)")
  fi
  if [[ ! -x "$PG_BIN/initdb" ]]; then
    log "PostgreSQL server binaries not found (apt-get install postgresql), or set DATABASE_URL."
    exit 2
  fi
  local port
  port=$(free_port)
  mkdir -p "$PG_DIR"
  if [[ $EUID -eq 0 ]]; then
    chown postgres: "$PG_DIR"
  fi
  as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; exit 2; }
  # Durability is worthless for a throwaway test server; speed is not.
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=200" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; exit 2; }
  PG_STARTED=1
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres cps
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/cps"
  log "PostgreSQL $("$PG_BIN/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port"
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    log "redis-server not found (apt-get install redis-server), or set REDIS_URL."
    exit 2
  fi
  REDIS_PORT=$(free_port)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --dir "$WORK_DIR" --pidfile "$WORK_DIR/redis.pid" --logfile "$WORK_DIR/redis.log"
  for _ in $(seq 1 100); do
    if [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; then
      export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
      log "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$REDIS_PORT"
      return
    fi
    sleep 0.1
  done
  log "Redis did not start:"; cat "$WORK_DIR/redis.log" >&2 || true
  exit 2
}

[[ -n ${DATABASE_URL:-} ]] || start_postgresql
[[ -n ${REDIS_URL:-} ]] || start_redis

export DJANGO_SETTINGS_MODULE=config.settings.test
set +e
"$PYTHON" -m pytest "$@"
status=$?
set -e
exit "$status"
