#!/usr/bin/env bash
# The README's run command, proven: `make run` on a virtualenv built from requirements.txt alone
# (never requirements-dev.txt), with a throwaway SQLite database and media folder. It imports
# every app module, then runs `make run` on a free loopback port, fetches the pages a newcomer
# opens first and fails on any status but 200 or any traceback in the server's log.
#
#   bash scripts/run_smoke.sh [VENV_DIR]     (default: a new one in a temp dir, removed afterwards)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cps-run.XXXXXX")
VENV_DIR=${1:-$WORK_DIR/venv}
SERVER_PID=""
log() { printf '[run_smoke] %s\n' "$*" >&2; }

cleanup() {
  local status=$?
  if [[ -n $SERVER_PID ]]; then
    kill -- "-$SERVER_PID" 2>/dev/null || kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -f $WORK_DIR/server.log ]]; then
    log "server log:"; tail -n 80 "$WORK_DIR/server.log" >&2 || true
  fi
  rm -rf "$WORK_DIR"
  exit "$status"
}
trap cleanup EXIT

# The embedded default: nothing from the environment (or a developer's .env) may switch a service on.
unset DATABASE_URL REDIS_URL S3_BUCKET FAL_KEY DJANGO_SETTINGS_MODULE
export DJANGO_DEBUG=true
export DATABASE_URL="sqlite:///$WORK_DIR/db.sqlite3"
export DJANGO_MEDIA_ROOT="$WORK_DIR/media"

log "installing requirements.txt into $VENV_DIR"
make --no-print-directory install VENV="$VENV_DIR" >"$WORK_DIR/install.log" 2>&1 \
  || { tail -n 40 "$WORK_DIR/install.log" >&2; exit 1; }

log "importing every app module with requirements.txt alone"
"$VENV_DIR/bin/python" scripts/import_all.py

PORT=$("$VENV_DIR/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "make run on 127.0.0.1:$PORT"
set -m  # the server gets its own process group, so cleanup stops runserver's reloader child too
make --no-print-directory run VENV="$VENV_DIR" HOST=127.0.0.1 PORT="$PORT" >"$WORK_DIR/server.log" 2>&1 &
SERVER_PID=$!
set +m

failed=0
# Wait for the server, then fetch what a newcomer opens first: the demo's story and character are
# found the way a visitor finds them, from the pages that link to them.
"$VENV_DIR/bin/python" - "$PORT" "$SERVER_PID" <<'PY' || failed=1
import os, re, sys, time, urllib.error, urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
server_pid = int(sys.argv[2])


def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


deadline = time.monotonic() + 600  # make run installs nothing new here, but migrates and renders the demo
while True:
    try:
        get("/healthz")
        break
    except OSError:
        try:
            os.kill(server_pid, 0)
        except OSError:
            sys.exit("[run_smoke] make run exited before serving")
        if time.monotonic() > deadline:
            sys.exit("[run_smoke] the server did not answer within 600 s")
        time.sleep(0.5)

_, home = get("/")
_, gallery = get("/gallery/")
story = re.search(r'href="(/stories/\d+/)"', home)
character = re.search(r'href="(/characters/[a-z0-9_-]+/)', gallery)
paths = ["/", "/admin/login/", "/api/v1/docs/", "/api/v1/schema/", "/gallery/"]
paths += [m.group(1) for m in (story, character) if m]
failed = not (story and character)
if failed:
    print("[run_smoke] the demo story or character is not linked from / and /gallery/", file=sys.stderr)
for path in paths:
    status, _ = get(path)
    print(f"[run_smoke] GET {path} -> {status}", file=sys.stderr)
    failed |= status != 200
sys.exit(1 if failed else 0)
PY
if grep -q "Traceback" "$WORK_DIR/server.log"; then
  log "the server log has a traceback"; failed=1
fi
[[ $failed -eq 0 ]] || exit 1
log "make run serves the site: ok"
