#!/usr/bin/env bash
# The hr-bridge benchmark: /sync at 10,000, 100,000 and 1,000,000 employees and an
# /authenticate storm, on PostgreSQL, MariaDB and SQLite, each beside the floor
# measured in the same run, with the peak RSS of every server run (default
# settings, no allocator variables); concurrent /sync calls; a mapped source over
# views beside the built-in tables. Prints Markdown tables (also saved to
# target/bench/results.md).
#
#   scripts/bench.sh                 # everything (about 6 minutes on 2 cores)
#   BACKENDS="postgres" SIZES="100000" scripts/bench.sh
#
# Needs the local PostgreSQL and MariaDB (started if down) and installs the HTTP
# load generator oha into target/bench-tools if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"postgres mysql sqlite"}
SIZES=${SIZES:-"10000 100000 1000000"}
CONCURRENT=${CONCURRENT:-50}
STORM_SECS=${STORM_SECS:-20}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
MY_ADMIN=${MY_ADMIN:-mysql://root@127.0.0.1:3306/test}
OUT=target/bench
mkdir -p "$OUT"

scripts/ensure-databases.sh >/dev/null
OHA=target/bench-tools/bin/oha
if [ ! -x "$OHA" ]; then
  echo "installing oha (once) into target/bench-tools" >&2
  cargo install oha --locked --root target/bench-tools >&2
fi
cargo build --release --locked --bin hr-bridge --example argon2_ceiling >&2
BIN=target/release/hr-bridge


now_ms() { date +%s%3N; }
median() { python3 -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

fresh_db() { # backend size -> prints URL
  local name="hrb_bench_$1_$2"
  case $1 in
    postgres)
      psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
      echo "postgres://postgres@127.0.0.1:5432/$name" ;;
    mysql)
      mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
      echo "mysql://root@127.0.0.1:3306/$name" ;;
    sqlite)
      rm -f "$OUT/$name.db" "$OUT/$name.db-wal" "$OUT/$name.db-shm"
      echo "sqlite://$OUT/$name.db?mode=rwc" ;;
  esac
}

EMPLOYEES_SQL="SELECT username, email, nick_name, ad_no, company, phone1, phone2, extension_no, gender FROM employees WHERE active ORDER BY username"
DEPARTMENTS_SQL="SELECT group_no, display_name, parent_group_no, active FROM departments ORDER BY group_no"
# As hr-bridge reads them: without a join (it filters memberships against the
# served users itself), which is also the cheaper floor (MariaDB sorts the join).
MEMBERS_SQL="SELECT group_no, username FROM department_members ORDER BY group_no, username"

floor_once() { # backend size -> seconds for the three sorted result sets, one client process
  local name="hrb_bench_$1_$2" start end
  start=$(now_ms)
  case $1 in
    postgres)
      psql -q -h 127.0.0.1 -U postgres -d "$name" \
        -c "COPY ($EMPLOYEES_SQL) TO STDOUT" -c "COPY ($DEPARTMENTS_SQL) TO STDOUT" \
        -c "COPY ($MEMBERS_SQL) TO STDOUT" >/dev/null ;;
    mysql)
      mariadb -h 127.0.0.1 -u root "$name" -e "$EMPLOYEES_SQL; $DEPARTMENTS_SQL; $MEMBERS_SQL" >/dev/null ;;
    sqlite)
      sqlite3 "$OUT/$name.db" "$EMPLOYEES_SQL; $DEPARTMENTS_SQL; $MEMBERS_SQL" >/dev/null ;;
  esac
  end=$(now_ms)
  python3 -c "print(($end - $start) / 1000)"
}

audit_successes() { # backend size -> successful logins recorded in the audit trail
  local name="hrb_bench_$1_$2" sql="SELECT COUNT(*) FROM auth_audit WHERE reason = 'success'"
  case $1 in
    postgres) psql -qAt -h 127.0.0.1 -U postgres -d "$name" -c "$sql" ;;
    mysql) mariadb -N -h 127.0.0.1 -u root "$name" -e "$sql" ;;
    sqlite) sqlite3 "$OUT/$name.db" "$sql" ;;
  esac
}

change_some() { # backend size: 100 employees get a new phone1, as HR edits do
  local name="hrb_bench_$1_$2"
  local sql="UPDATE employees SET phone1 = 'changed' WHERE username IN (SELECT username FROM (SELECT username FROM employees ORDER BY username LIMIT 100) AS first_ones)"
  case $1 in
    postgres) psql -q -h 127.0.0.1 -U postgres -d "$name" -c "$sql" >/dev/null ;;
    mysql) mariadb -h 127.0.0.1 -u root "$name" -e "$sql" ;;
    sqlite) sqlite3 "$OUT/$name.db" "$sql" ;;
  esac
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # url port [extra env assignments…]
  local url=$1 port=$2; shift 2
  env "$@" HR_BRIDGE__DATABASE__URL=$url HR_BRIDGE__SERVER__LISTEN=127.0.0.1:$port \
  HR_BRIDGE__OMFLOW__USERNAME=omflow HR_BRIDGE__OMFLOW__PASSWORD=bench \
  HR_BRIDGE__AUTH__MAX_FAILURES=0 RUST_LOG=warn "$BIN" serve 2>>"$OUT/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not become ready" >&2; exit 1
}

stop_server() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
trap 'stop_server 2>/dev/null || true' EXIT

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$SERVER_PID/status"; }

json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

SYNC_ROWS=()
CHANGED_ROWS=()
AUTH_ROWS=()
CONC_ROWS=()
MAPPED_ROWS=()

sync_run() { # port label -> "p50 p90 bytes ok" from 10 sequential calls
  # identity: oha asks for gzip by default, which would time the compression.
  "$OHA" -n 10 -c 1 -m POST -a omflow:bench -H 'accept-encoding: identity' --no-tui --output-format json \
    "http://127.0.0.1:$1/sync" >"$OUT/sync-$2.json"
  echo "$(json_field "$OUT/sync-$2.json" 'd["latencyPercentiles"]["p50"]') \
$(json_field "$OUT/sync-$2.json" 'd["latencyPercentiles"]["p90"]') \
$(json_field "$OUT/sync-$2.json" 'd["summary"]["sizePerRequest"]') \
$(json_field "$OUT/sync-$2.json" 'd["statusCodeDistribution"].get("200", 0)')"
}

# The demo tables behind views with other names, read through [source] queries.
MAPPED_VIEWS="CREATE VIEW hr_person AS SELECT username AS login, email AS mail, nick_name AS full_name, ad_no AS staff_no, company AS employer, phone1 AS office_phone, phone2 AS mobile, extension_no AS ext, gender AS sex, password_hash AS pw, active AS is_active FROM employees;
CREATE VIEW hr_unit AS SELECT group_no AS code, display_name AS title, parent_group_no AS parent_code, active AS is_active FROM departments;
CREATE VIEW hr_member AS SELECT group_no AS unit_code, username AS login FROM department_members;"
MAPPED_ENV=(
  "HR_BRIDGE__SOURCE__EMPLOYEES=SELECT login AS username, mail AS email, full_name AS nick_name, staff_no AS ad_no, employer AS company, office_phone AS phone1, mobile AS phone2, ext AS extension_no, sex AS gender, is_active AS active FROM hr_person"
  "HR_BRIDGE__SOURCE__DEPARTMENTS=SELECT code AS group_no, title AS display_name, parent_code AS parent_group_no, is_active AS active FROM hr_unit"
  "HR_BRIDGE__SOURCE__MEMBERSHIPS=SELECT unit_code AS group_no, login AS username FROM hr_member"
  "HR_BRIDGE__SOURCE__CREDENTIALS=SELECT pw AS password_hash, is_active AS active, login AS username FROM hr_person WHERE login = :username"
)
CEILING_JSON=$(target/release/examples/argon2_ceiling 5)
CEILING=$(python3 -c 'import json,sys; print("%.1f" % json.loads(sys.argv[1])["checks_per_second"])' "$CEILING_JSON")
echo "argon2 ceiling: $CEILING_JSON" >&2

for backend in $BACKENDS; do
  for size in $SIZES; do
    url=$(fresh_db "$backend" "$size")
    seed=$(HR_BRIDGE__DATABASE__URL=$url RUST_LOG=warn /usr/bin/time -f "seed_peak_kb=%M" -o "$OUT/seed-$backend-$size.time" \
      "$BIN" seed-demo --employees "$size" --departments $((size / 20)))
    seed_mb=$(awk -F= '/seed_peak_kb/ {printf "%.0f", $2/1024}' "$OUT/seed-$backend-$size.time")
    password=${seed##*password is: }
    echo "$backend $size: $seed" >&2
    floors=()
    for _ in 1 2 3 4 5; do floors+=("$(floor_once "$backend" "$size")"); done
    floor=$(median "${floors[@]}")
    port=$(free_port)
    start_server "$url" "$port"
    # One warm-up call records the first snapshot, as a running service has.
    curl -fs -u omflow:bench -X POST "http://127.0.0.1:$port/sync" -o /dev/null
    read -r p50 p90 bytes ok < <(sync_run "$port" "$backend-$size")
    rss=$(peak_rss_mb)
    # A sync whose data changed: the guard reads the previous snapshot while the
    # new one is built, and the new snapshot is written.
    change_some "$backend" "$size"
    changed_s=$(curl -fs -u omflow:bench -X POST "http://127.0.0.1:$port/sync" -o /dev/null -w '%{time_total}')
    CHANGED_ROWS+=("| $backend | $size | $(printf '%.3f' "$changed_s") | $(peak_rss_mb) |")
    ratio=$(python3 -c "print('%.2f' % ($p50 / $floor))")
    SYNC_ROWS+=("| $backend | $size | $(printf '%.3f' "$p50") | $(printf '%.3f' "$p90") | $bytes | $rss | $floor | $ratio | $ok/10 | $seed_mb |")

    # Many callers at once, on a fresh process so that its peak is theirs alone.
    if [ "$size" -ge 100000 ]; then
      stop_server
      start_server "$url" "$port"
      callers=$CONCURRENT
      [ "$size" -ge 1000000 ] && callers=20
      "$OHA" -n "$callers" -c "$callers" -m POST -a omflow:bench -H 'accept-encoding: identity' \
        --no-tui --output-format json \
        "http://127.0.0.1:$port/sync" >"$OUT/conc-$backend-$size.json"
      cok=$(json_field "$OUT/conc-$backend-$size.json" 'd["statusCodeDistribution"].get("200", 0)')
      cslow=$(json_field "$OUT/conc-$backend-$size.json" '"%.3f" % d["summary"]["slowest"]')
      CONC_ROWS+=("| $backend | $size | $callers | $cok/$callers | $cslow | $(peak_rss_mb) | $rss |")
    fi

    # The same data through [source] queries over renamed views (PostgreSQL).
    if [ "$backend" = postgres ] && [ "$size" = 100000 ]; then
      psql -q -h 127.0.0.1 -U postgres -d "hrb_bench_${backend}_$size" -c "$MAPPED_VIEWS" >/dev/null
      stop_server
      state="$OUT/state-mapped-$size.db"; rm -f "$state"*
      start_server "$url" "$port" "${MAPPED_ENV[@]}" "HR_BRIDGE__STATE__URL=sqlite://$state?mode=rwc"
      curl -fs -u omflow:bench -X POST "http://127.0.0.1:$port/sync" -o /dev/null
      read -r m50 m90 mbytes mok < <(sync_run "$port" "mapped-$size")
      stop_server
      start_server "$url" "$port"
      read -r b50 _ bbytes _ < <(sync_run "$port" "builtin-again-$size")
      [ "$mbytes" = "$bbytes" ] || echo "warning: mapped payload size $mbytes differs from built-in $bbytes" >&2
      MAPPED_ROWS+=("| postgres | $size | $(printf '%.3f' "$b50") | $(printf '%.3f' "$m50") | $(python3 -c "print('%.2f' % ($m50 / $b50))") | $mok/10 |")
    fi

    if [ "$size" = "${SIZES##* }" ]; then
      body="{\"username\":\"user$(printf "%0${#size}d" 1)\",\"password\":\"$password\"}"
      # A sleeping probe: oha's rate limiter would spin and steal a core.
      python3 scripts/probe.py "http://127.0.0.1:$port/healthz" "$STORM_SECS" >"$OUT/healthz-$backend.json" &
      probe=$!
      "$OHA" -z "${STORM_SECS}s" -c 64 -m POST -a omflow:bench -H 'content-type: application/json' \
        -d "$body" --no-tui --output-format json \
        "http://127.0.0.1:$port/authenticate" >"$OUT/auth-$backend.json"
      wait "$probe"
      f="$OUT/auth-$backend.json"
      total_secs=$(json_field "$f" 'd["summary"]["total"]')
      answered=$(json_field "$f" 'd["statusCodeDistribution"].get("200", 0)')
      # Count only checks that really hashed and matched, from the audit trail.
      served=$(audit_successes "$backend" "$size")
      busy=$(json_field "$f" 'd["statusCodeDistribution"].get("503", 0)')
      # Rate of answered 200s (oha drops requests still in flight at the end, which
      # the server completes and audits); every 200 must be an audited success.
      rate=$(python3 -c "print('%.1f' % ($answered / $total_secs))")
      [ "$served" -ge "$answered" ] || echo "warning: fewer audited successes than 200s" >&2
      a50=$(json_field "$f" '"%.3f" % d["latencyPercentiles"]["p50"]')
      a99=$(json_field "$f" '"%.3f" % d["latencyPercentiles"]["p99"]')
      h99=$(json_field "$OUT/healthz-$backend.json" '"%.1f" % d["p99_ms"]')
      aratio=$(python3 -c "print('%.2f' % ($rate / $CEILING))")
      AUTH_ROWS+=("| $backend | $rate | $CEILING | $aratio | $a50 | $a99 | $served / $answered / $busy | $h99 |")
    fi
    stop_server
  done
done

{
  echo "### /sync (10 sequential calls after one warm-up)"
  echo
  echo "| backend | employees | median s | p90 s | bytes | peak RSS MB | floor s | median / floor | 200s | seed-demo peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${SYNC_ROWS[@]}"
  echo
  echo "### one more /sync after 100 employees changed (guard reads the last snapshot, the new one is written)"
  echo
  echo "| backend | employees | time s | peak RSS MB of the whole run so far |"
  echo "|---|---|---|---|"
  printf '%s\n' "${CHANGED_ROWS[@]}"
  echo
  echo "### concurrent /sync (a fresh server, all callers at once)"
  echo
  echo "| backend | employees | callers | 200s | slowest s | peak RSS MB | peak RSS MB of 10 sequential |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${CONC_ROWS[@]}"
  echo
  echo "### mapped source ([source] queries over renamed views, state in SQLite) vs built-in tables"
  echo
  echo "| backend | employees | built-in median s | mapped median s | mapped / built-in | 200s |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${MAPPED_ROWS[@]}"
  echo
  echo "### /authenticate, 64 clients logging in as one employee for ${STORM_SECS} s (largest size; lockout off, since 64 concurrent logins of one account would trip it), /healthz probed at 20/s meanwhile"
  echo
  echo "| backend | successful checks/s | Argon2 ceiling/s | ratio | p50 s | p99 s | successes / 200s / 503s | /healthz p99 ms |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${AUTH_ROWS[@]}"
  echo
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); ceiling: $CEILING_JSON"
} | tee "$OUT/results.md"
