#!/usr/bin/env bash
# The test command of the README: starts the local databases if this machine has
# them, then runs every test. Tests whose database is unreachable print SKIPPED
# (or fail, with HR_BRIDGE_REQUIRE_DBS=1 as in CI).
#
# With cargo-nextest installed, tests run under it (each in its own process,
# several at once: see .config/nextest.toml; NEXTEST_PROFILE=ci is CI's profile);
# without it, under `cargo test`. Then the web console's browser tests
# (scripts/browser-test.sh: Debian's chromium driven by Playwright, installed on
# first use). Arguments go to the Rust runner only, e.g. a name filter, and then
# the browser tests are left out:
#   scripts/test.sh lockout::
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v pg_ctlcluster >/dev/null || [ -x /usr/sbin/mariadbd ]; then
  scripts/ensure-databases.sh || echo "warning: a database server is down; its tests will be skipped" >&2
fi
if cargo nextest --version >/dev/null 2>&1; then
  # The crate has no doctests, the one kind of test nextest does not run.
  cargo nextest run --locked "$@"
else
  echo "cargo-nextest is not installed: running the tests with cargo test" >&2
  cargo test --locked "$@"
fi
if [ "$#" -eq 0 ]; then
  scripts/browser-test.sh
fi
