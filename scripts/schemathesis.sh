#!/usr/bin/env bash
# Checks the running server against its own OpenAPI description with schemathesis,
# once per backend (SQLite, PostgreSQL, MariaDB): every documented operation, every
# check, a bounded number of generated examples, so CI stays within a few minutes.
# The three backends run at once, each against its own server and database.
#
#   scripts/schemathesis.sh                   # all three backends
#   BACKENDS=sqlite EXAMPLES=50 scripts/schemathesis.sh
#   scripts/schemathesis.sh prepare           # only install schemathesis
#
# schemathesis is installed with pip into a venv under target/ on first use. The
# server is the debug build's binary (built here if it is not up to date); each
# listens on a free port; databases are created and dropped on the local servers
# named in the README.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"sqlite postgres mysql"}
EXAMPLES=${EXAMPLES:-25}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
VENV=$TARGET/schemathesis-venv
OUT=$TARGET/schemathesis
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
fi
[ "${1:-}" = prepare ] && exit 0

cargo build --locked --quiet --bin hr-bridge
BIN=$TARGET/debug/hr-bridge

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

name="hrb_schemathesis_$$"
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
drop_databases() {
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS ${name}_postgres WITH (FORCE)" >/dev/null 2>&1 || true
  mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS ${name}_mysql" >/dev/null 2>&1 || true
}

# One backend: its database, a seeded server, schemathesis against it. Output
# goes to $OUT/<backend>.txt; the server's log to $OUT/server-<backend>.log.
run_backend() {
  local backend=$1 db="${name}_$1" url port server status=0
  case $backend in
    sqlite)
      rm -rf "$OUT/sqlite-db"; mkdir -p "$OUT/sqlite-db"
      url="sqlite://$OUT/sqlite-db/hr.db?mode=rwc" ;;
    postgres)
      psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
      url="postgres://postgres@127.0.0.1:5432/$db" ;;
    mysql)
      mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
      url="mysql://root@127.0.0.1:3306/$db" ;;
    *) echo "unknown backend $backend" >&2; return 2 ;;
  esac
  port=${PORT:-$(free_port)}
  # Only the settings given here: nothing from the caller's environment.
  local env=(env -i PATH="$PATH" RUST_LOG=warn NO_COLOR=1
    HR_BRIDGE__DATABASE__URL="$url" HR_BRIDGE__SERVER__LISTEN="127.0.0.1:$port"
    HR_BRIDGE__OMFLOW__USERNAME=omflow HR_BRIDGE__OMFLOW__PASSWORD="$password")
  "${env[@]}" "$BIN" seed-demo --employees 40 --departments 4 >/dev/null
  "${env[@]}" "$BIN" serve >"$OUT/server-$backend.log" 2>&1 &
  server=$!
  # The server goes with this backend's run, however it ends.
  trap 'kill "$server" 2>/dev/null || true' EXIT
  trap 'exit 1' TERM INT
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local started=$SECONDS
  # The seed makes runs repeatable; the checks are schemathesis' full set. It runs
  # inside its own directory under target/ so that its cache stays out of the
  # source tree and apart from the other backends'.
  mkdir -p "$OUT/$backend"
  (cd "$OUT/$backend" && timeout 300 "$VENV/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
      --auth "omflow:$password" \
      --checks all \
      --max-examples "$EXAMPLES" \
      --seed 1 \
      --generation-database none \
      --request-timeout 30 \
      --no-color \
      --report junit --report-dir "$OUT/$backend") >"$OUT/$backend.txt" 2>&1 || status=1
  echo "== $backend: $((SECONDS - started)) s" >>"$OUT/$backend.txt"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  case $backend in
    postgres) psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null ;;
    mysql) mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $db" ;;
  esac
  return $status
}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  drop_databases
  rm -rf "$OUT/sqlite-db"
}
trap cleanup EXIT

for backend in $BACKENDS; do
  run_backend "$backend" &
  pids+=($!)
done
status=0
set -- $BACKENDS
for pid in "${pids[@]}"; do
  backend=$1; shift
  if wait "$pid"; then result=passed; else result=FAILED; status=1; fi
  echo "== schemathesis on $backend ($EXAMPLES examples per operation): $result"
  cat "$OUT/$backend.txt"
done
pids=()
exit $status
