#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium driven by Playwright for
# Python (pytest, tests/browser/), with an axe-core accessibility check on every
# page. Installs what it needs when missing (chromium from apt; playwright,
# axe-playwright-python and pytest into a venv under target/; Playwright never
# downloads a browser of its own), builds the binary, and runs the tests, which
# start `hr-bridge serve --demo` over a fresh database per server on SQLite,
# PostgreSQL and MariaDB (tests/browser/conftest.py). Both database servers must
# be up (scripts/ensure-databases.sh starts them when it can): a missing one
# fails this script, it is never skipped.
#
#   scripts/browser-test.sh                  # every browser test
#   scripts/browser-test.sh -k escaping      # pytest arguments pass through
#   scripts/browser-test.sh -k postgres      # one backend's tests
#   SCREENSHOT=docs/console.png scripts/browser-test.sh -k 'guard and sqlite'
#   scripts/browser-test.sh prepare          # only install chromium and the venv
#                                            # (.ci/run: while the code compiles)
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
VENV=$PWD/target/browser-venv

if [ ! -x "$CHROMIUM" ]; then
  echo "browser-test: installing chromium from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x "$VENV/bin/pytest" ] || ! "$VENV/bin/python" -c 'import playwright, axe_playwright_python' 2>/dev/null; then
  echo "browser-test: installing playwright, axe-playwright-python and pytest into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    'playwright>=1.40,<2' 'axe-playwright-python>=0.1.4,<1' 'pytest>=7,<9'
fi
[ "${1:-}" = prepare ] && exit 0
# The tests create and drop their databases with the servers' own clients.
for tool in psql mariadb; do
  if ! command -v "$tool" >/dev/null; then
    echo "browser-test: FAILED: $tool is missing (Debian: postgresql-client, mariadb-client);" \
      "the browser tests run on PostgreSQL and MariaDB as well as SQLite" >&2
    exit 1
  fi
done
if ! scripts/ensure-databases.sh >&2; then
  echo "browser-test: FAILED: PostgreSQL and MariaDB must both be up;" \
    "the browser tests run on every backend and skip none" >&2
  exit 1
fi
cargo build --locked --quiet --bin hr-bridge
export HR_BRIDGE_BIN=${HR_BRIDGE_BIN:-$PWD/target/debug/hr-bridge}
export CHROMIUM
# Playwright must use the system's chromium, never fetch one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec "$VENV/bin/pytest" -q tests/browser "$@"
