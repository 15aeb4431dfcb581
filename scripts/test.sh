#!/usr/bin/env bash
# The test command of the README: starts the local databases if this machine has
# them, then runs every test. Tests whose database is unreachable print SKIPPED
# (or fail, with HR_BRIDGE_REQUIRE_DBS=1 as in CI).
#
# With cargo-nextest installed, tests run under it (each in its own process,
# several at once: see .config/nextest.toml; NEXTEST_PROFILE=ci is CI's profile);
# without it, under `cargo test`. Beside them, the web console's browser tests
# (scripts/browser-test.sh: Debian's chromium driven by Playwright, installed on
# first use); most tests wait on servers and floors rather than on the CPU, so the
# two run side by side, the browser tests' output kept in
# target/browser-test.log and shown when they end. Arguments go to the Rust runner
# only, e.g. a name filter, and then the browser tests are left out:
#   scripts/test.sh lockout::
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v pg_ctlcluster >/dev/null || [ -x /usr/sbin/mariadbd ]; then
  scripts/ensure-databases.sh || echo "warning: a database server is down; its tests will be skipped" >&2
fi
# Both runners need the binary: built once, before either starts.
cargo build --locked --quiet --bin hr-bridge
browser=
if [ "$#" -eq 0 ]; then
  mkdir -p target
  scripts/browser-test.sh >target/browser-test.log 2>&1 &
  browser=$!
  trap '[ -n "$browser" ] && kill "$browser" 2>/dev/null' EXIT
fi
status=0
if cargo nextest --version >/dev/null 2>&1; then
  # The crate has no doctests, the one kind of test nextest does not run.
  cargo nextest run --locked "$@" || status=$?
else
  echo "cargo-nextest is not installed: running the tests with cargo test" >&2
  cargo test --locked "$@" || status=$?
fi
if [ -n "$browser" ]; then
  browser_status=0
  wait "$browser" || browser_status=$?
  browser=
  printf '\n==== browser tests (scripts/browser-test.sh)\n'
  cat target/browser-test.log
  if [ "$browser_status" -ne 0 ]; then
    echo "browser tests FAILED (exit $browser_status)" >&2
    status=1
  fi
fi
exit "$status"
