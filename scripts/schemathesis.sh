#!/usr/bin/env bash
# Checks the running server against its own OpenAPI description with schemathesis,
# once per backend (SQLite, PostgreSQL, MariaDB): every documented operation, every
# check, a bounded number of generated examples, so CI stays within a few minutes.
#
#   scripts/schemathesis.sh                   # all three backends
#   BACKENDS=sqlite EXAMPLES=50 scripts/schemathesis.sh
#
# schemathesis is installed with pip into a venv under target/ on first use. The
# server listens on $PORT (default: a free port); databases are created and dropped
# on the local servers named in the README.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"sqlite postgres mysql"}
EXAMPLES=${EXAMPLES:-25}
VENV=$PWD/target/schemathesis-venv
OUT=$PWD/target/schemathesis
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
fi
cargo build --locked --quiet
BIN=$PWD/target/debug/hr-bridge

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

name="hrb_schemathesis_$$"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
  rm -rf "$OUT/sqlite-db"
}
trap cleanup EXIT

password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
status=0
for backend in $BACKENDS; do
  case $backend in
    sqlite)
      rm -rf "$OUT/sqlite-db"; mkdir -p "$OUT/sqlite-db"
      url="sqlite://$OUT/sqlite-db/hr.db?mode=rwc" ;;
    postgres)
      psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
      url="postgres://postgres@127.0.0.1:5432/$name" ;;
    mysql)
      mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
      url="mysql://root@127.0.0.1:3306/$name" ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  port=${PORT:-$(free_port)}
  export HR_BRIDGE__DATABASE__URL="$url"
  export HR_BRIDGE__SERVER__LISTEN="127.0.0.1:$port"
  export HR_BRIDGE__OMFLOW__USERNAME=omflow
  export HR_BRIDGE__OMFLOW__PASSWORD="$password"
  export RUST_LOG=warn
  "$BIN" seed-demo --employees 40 --departments 4 >/dev/null
  "$BIN" serve >"$OUT/server-$backend.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "== schemathesis on $backend ($EXAMPLES examples per operation)"
  started=$(date +%s)
  # The seed makes runs repeatable; the checks are schemathesis' full set. It runs
  # inside target/ so that its cache directory stays out of the source tree.
  if ! (cd "$OUT" && timeout 300 "$VENV/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
      --auth "omflow:$password" \
      --checks all \
      --max-examples "$EXAMPLES" \
      --seed 1 \
      --generation-database none \
      --request-timeout 30 \
      --no-color \
      --report junit --report-dir "$OUT/$backend") \
      2>&1 | tee "$OUT/$backend.txt"; then
    status=1
  fi
  echo "== $backend: $(( $(date +%s) - started )) s"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  case $backend in
    postgres) psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null ;;
    mysql) mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $name" ;;
  esac
done
exit $status
