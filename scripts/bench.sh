#!/usr/bin/env bash
# The hr-bridge benchmark: /sync at 10,000, 100,000 and 1,000,000 employees (timed
# from outside the process with curl: RUNS calls, default 5, median) and an
# /authenticate storm, on PostgreSQL, MariaDB and SQLite, each beside the floor
# measured in the same run (the database's own client; on PostgreSQL also
# psycopg 3's COPY in one process), with the peak RSS of every server run (default
# settings, no allocator variables); concurrent /sync calls; a mapped source over
# views beside the built-in tables. Prints Markdown tables (also saved to
# target/bench/results.md).
#
#   scripts/bench.sh                 # everything (about 6 minutes on 2 cores)
#   BACKENDS="postgres" SIZES="100000" scripts/bench.sh
#   CONCURRENT=0 STORM_SECS=0 scripts/bench.sh     # sequential /sync only
#
# Needs the local PostgreSQL and MariaDB (started if down) and installs the HTTP
# load generator oha (concurrent calls, the login storm) and psycopg into
# target/bench-tools if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"postgres mysql sqlite"}
SIZES=${SIZES:-"10000 100000 1000000"}
CONCURRENT=${CONCURRENT:-50}
RUNS=${RUNS:-5}
STORM_SECS=${STORM_SECS:-20}
OUT=target/bench
mkdir -p "$OUT"

scripts/ensure-databases.sh >/dev/null
OHA=target/bench-tools/bin/oha
# CONCURRENT=0 and STORM_SECS=0 leave out the concurrent calls and the login
# storm, the two parts that need oha.
if [ ! -x "$OHA" ] && { [ "$CONCURRENT" != 0 ] || [ "$STORM_SECS" != 0 ]; }; then
  echo "installing oha (once) into target/bench-tools" >&2
  cargo install oha --locked --root target/bench-tools >&2
fi
cargo build --release --locked --bin hr-bridge --example argon2_ceiling >&2
BIN=target/release/hr-bridge


# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

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
      psql -q -h 127.0.0.1 -U "$PG_ADMIN_USER" -d "$name" \
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

# PostgreSQL's second floor: psycopg 3's COPY in one process, timed inside it.
PSYCOPG=target/bench-tools/venv/bin/python
if [[ " $BACKENDS " == *" postgres "* ]] && ! "$PSYCOPG" -c 'import psycopg' 2>/dev/null; then
  echo "installing psycopg (once) into target/bench-tools/venv" >&2
  python3 -m venv target/bench-tools/venv >&2
  target/bench-tools/venv/bin/pip -q install 'psycopg[binary]' >&2
fi
psycopg_floor_once() { # size -> seconds
  "$PSYCOPG" scripts/bench-pg-floor.py "postgresql://$PG_ADMIN_USER@127.0.0.1:5432/hrb_bench_postgres_$1" \
    "$EMPLOYEES_SQL" "$DEPARTMENTS_SQL" "$MEMBERS_SQL" 2>/dev/null
}

audit_successes() { # backend size -> successful logins recorded in the audit trail
  sql_in "$1" "hrb_bench_$1_$2" "SELECT COUNT(*) FROM auth_audit WHERE reason = 'success'"
}

change_some() { # backend size: 100 employees get a new phone1, as HR edits do
  sql_in "$1" "hrb_bench_$1_$2" "UPDATE employees SET phone1 = 'changed' WHERE username IN (SELECT username FROM (SELECT username FROM employees ORDER BY username LIMIT 100) AS first_ones)" >/dev/null
}

SYNC_ROWS=()
CHANGED_ROWS=()
AUTH_ROWS=()
CONC_ROWS=()
MAPPED_ROWS=()

sync_run() { # port label -> "median min max bytes ok" from $RUNS sequential curl calls
  local times=() line t code bytes ok=0
  : >"$OUT/sync-$2.txt"
  for _ in $(seq 1 "$RUNS"); do
    line=$(curl_sync "$1")
    echo "$line" >>"$OUT/sync-$2.txt"
    read -r t code bytes <<<"$line"
    times+=("$t")
    [ "$code" = 200 ] && ok=$((ok + 1))
  done
  echo "$(median "${times[@]}") $(python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f %.3f" % (min(v), max(v)))' "${times[@]}") $bytes $ok"
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
CEILING_JSON="not measured"
if [ "$STORM_SECS" != 0 ]; then
  CEILING_JSON=$(target/release/examples/argon2_ceiling 5)
  CEILING=$(python3 -c 'import json,sys; print("%.1f" % json.loads(sys.argv[1])["checks_per_second"])' "$CEILING_JSON")
  echo "argon2 ceiling: $CEILING_JSON" >&2
fi

for backend in $BACKENDS; do
  for size in $SIZES; do
    url=$(fresh_db "$backend" "hrb_bench_${backend}_$size")
    seed "$BIN" "$url" "$size" "$backend-$size"
    seed_mb=$SEED_MB
    password=$SEED_PASSWORD
    floors=()
    for _ in 1 2 3 4 5; do floors+=("$(floor_once "$backend" "$size")"); done
    floor=$(median "${floors[@]}")
    pfloor="-"
    best=$floor
    if [ "$backend" = postgres ]; then
      pfloors=()
      for _ in 1 2 3 4 5; do pfloors+=("$(psycopg_floor_once "$size")"); done
      pfloor=$(median "${pfloors[@]}")
      best=$(python3 -c "print(min($floor, $pfloor))")
    fi
    port=$(free_port)
    start_server "$url" "$port"
    # One warm-up call records the first snapshot, as a running service has.
    curl -fs -u omflow:bench -X POST "http://127.0.0.1:$port/sync" -o /dev/null
    read -r p50 lo hi bytes ok < <(sync_run "$port" "$backend-$size")
    rss=$(peak_rss_mb)
    # A sync whose data changed: the guard reads the previous snapshot while the
    # new one is built, and the new snapshot is written.
    change_some "$backend" "$size"
    changed_s=$(curl -fs -u omflow:bench -X POST "http://127.0.0.1:$port/sync" -o /dev/null -w '%{time_total}')
    CHANGED_ROWS+=("| $backend | $size | $(printf '%.3f' "$changed_s") | $(peak_rss_mb) |")
    SYNC_ROWS+=("| $backend | $size | $p50 | $lo–$hi | $bytes | $rss | $floor | $pfloor | $(ratio "$p50" "$best") | $ok/$RUNS | $seed_mb |")

    # Many callers at once, on a fresh process so that its peak is theirs alone.
    if [ "$size" -ge 100000 ] && [ "$CONCURRENT" != 0 ]; then
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
      sql_in postgres "hrb_bench_${backend}_$size" "$MAPPED_VIEWS" >/dev/null
      stop_server
      state="$OUT/state-mapped-$size.db"; rm -f "$state"*
      start_server "$url" "$port" "${MAPPED_ENV[@]}" "HR_BRIDGE__STATE__URL=sqlite://$state?mode=rwc"
      curl -fs -u omflow:bench -X POST "http://127.0.0.1:$port/sync" -o /dev/null
      read -r m50 _ _ mbytes mok < <(sync_run "$port" "mapped-$size")
      stop_server
      start_server "$url" "$port"
      read -r b50 _ _ bbytes _ < <(sync_run "$port" "builtin-again-$size")
      [ "$mbytes" = "$bbytes" ] || echo "warning: mapped payload size $mbytes differs from built-in $bbytes" >&2
      MAPPED_ROWS+=("| postgres | $size | $b50 | $m50 | $(ratio "$m50" "$b50") | $mok/$RUNS |")
    fi

    if [ "$size" = "${SIZES##* }" ] && [ "$STORM_SECS" != 0 ]; then
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
  echo "### /sync ($RUNS sequential curl calls after one warm-up; floors: median of 5)"
  echo
  echo "| backend | employees | median s | min–max s | bytes | peak RSS MB | client floor s | psycopg floor s | median / lower floor | 200s | seed-demo peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
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
