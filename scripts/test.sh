#!/usr/bin/env bash
# The test command of the README: starts the local databases if this machine has
# them, then runs every test. Tests whose database is unreachable print SKIPPED
# (or fail, with HR_BRIDGE_REQUIRE_DBS=1 as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v pg_ctlcluster >/dev/null || [ -x /usr/sbin/mariadbd ]; then
  scripts/ensure-databases.sh || echo "warning: a database server is down; its tests will be skipped" >&2
fi
cargo test --locked "$@"
