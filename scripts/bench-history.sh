#!/usr/bin/env bash
# The operators' loop at scale, on PostgreSQL, MariaDB and SQLite:
#  1. /sync with sync history on against the last release without it (BASELINE,
#     default 2efbc49), both servers side by side on the same data, calls
#     alternated (timed from outside with curl, RUNS calls each, median);
#  2. a deletion-guard refusal of one employee in five (200,000 at a million):
#     its time, the server's peak RSS, and what history and the pending approval
#     keep (rows), after one refusal and after three;
#  3. the web console at that size with 100,000 more history rows: every page
#     timed with curl (median of RUNS), the pending page at its first and last
#     page and searched;
#  4. /sync while one client requests console pages back to back, alternated
#     with /sync alone.
# Prints Markdown tables (also saved to target/bench/history.md).
#
#   scripts/bench-history.sh                       # about 25 minutes on 2 cores
#   BACKENDS=sqlite SIZES=100000 scripts/bench-history.sh
#   OLD_BIN=… NEW_BIN=… scripts/bench-history.sh   # two binaries built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-"postgres mysql sqlite"}
SIZES=${SIZES:-"100000 1000000"}
RUNS=${RUNS:-5}
BASELINE=${BASELINE:-2efbc49}
HISTORY_ROWS=${HISTORY_ROWS:-100000}
# COMPARE=0 leaves out the baseline (part 1) and measures this build alone.
COMPARE=${COMPARE:-1}
OUT=target/bench
mkdir -p "$OUT"
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

scripts/ensure-databases.sh >/dev/null
# The baseline's own release build, from its sources, sharing our target
# directory (its dependencies are ours, so only what changed is compiled); its
# binary is kept aside before ours is linked again.
BASE_DIR=target/bench-baseline
OLD=${OLD_BIN:-$(pwd)/$BASE_DIR/hr-bridge}
if [ "$COMPARE" = 1 ] && [ -z "${OLD_BIN:-}" ] && [ "$(cat "$BASE_DIR/rev" 2>/dev/null)" != "$(git rev-parse "$BASELINE")" ] || [ ! -x "$OLD" ]; then
  echo "building the baseline $BASELINE (once)" >&2
  rm -rf "$BASE_DIR"
  mkdir -p "$BASE_DIR/src"
  git archive "$BASELINE" | tar -x -C "$BASE_DIR/src"
  (cd "$BASE_DIR/src" && CARGO_TARGET_DIR=$(pwd)/../.. cargo build --release --locked --bin hr-bridge >&2)
  cp target/release/hr-bridge "$OLD"
  git rev-parse "$BASELINE" >"$BASE_DIR/rev"
fi
NEW=${NEW_BIN:-$(pwd)/target/release/hr-bridge}
[ -n "${NEW_BIN:-}" ] || cargo build --release --locked --bin hr-bridge >&2

call_secs() { curl_sync "$1" | cut -d' ' -f1; }
call_status() { curl_sync "$1" | cut -d' ' -f2; }

# Synthetic history rows (served calls with nothing changed), as a year of
# OMFLOW's calls leaves them, older than anything the benchmark records.
fake_history() { # backend name rows
  local cols="occurred_ms, client_addr, request_id, outcome, status, duration_ms, bytes, user_count, group_count, digest, base_digest, users_added, users_changed, users_dropped, groups_added, groups_changed, groups_dropped, names"
  local vals="1700000000000 + n * 60000, '10.0.0.9', 'bench', 'served', 200, 900, 1000, 10, 1, 'd', 'd', 0, 0, 0, 0, 0, 0, 'none'"
  case $1 in
    postgres) sql_in postgres "$2" "INSERT INTO sync_history ($cols) SELECT $vals FROM generate_series(1::bigint, $3) AS s(n)" ;;
    mysql) sql_in mysql "$2" "INSERT INTO sync_history ($cols) SELECT $vals FROM (SELECT seq AS n FROM seq_1_to_$3) AS s" ;;
    sqlite) sql_in sqlite "$2" "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $3) INSERT INTO sync_history ($cols) SELECT $vals FROM s" ;;
  esac >/dev/null
}

settle() { # backend name drops: waits (up to 2 minutes) until history is written after the answers
  for _ in $(seq 1 600); do
    [ "$(sql_in "$1" "$2" "SELECT COUNT(*) FROM sync_history WHERE names = 'pending'")" = 0 ] &&
      [ "$(sql_in "$1" "$2" "SELECT COUNT(*) FROM sync_approval_drops")" -ge "$3" ] && return 0
    sleep 0.2
  done
  echo "warning: history still being written" >&2
}

kept_rows() { # backend name -> "history calls, history names, approval drops"
  local h n d
  h=$(sql_in "$1" "$2" "SELECT COUNT(*) FROM sync_history")
  n=$(sql_in "$1" "$2" "SELECT COUNT(*) FROM sync_history_names")
  d=$(sql_in "$1" "$2" "SELECT COUNT(*) FROM sync_approval_drops")
  echo "$h $n $d"
}

db_bytes() { # backend name -> bytes of the three history tables (SQLite: the whole file)
  case $1 in
    postgres) sql_in postgres "$2" "SELECT pg_total_relation_size('sync_history') + pg_total_relation_size('sync_history_names') + pg_total_relation_size('sync_approval_drops') + pg_total_relation_size('sync_approvals')" ;;
    mysql)
      sql_in mysql "$2" "ANALYZE TABLE sync_history, sync_history_names, sync_approval_drops, sync_approvals" >/dev/null
      sql_in mysql "$2" "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('sync_history', 'sync_history_names', 'sync_approval_drops', 'sync_approvals')" ;;
    sqlite) sql_in sqlite "$2" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null; stat -c %s "$OUT/$2.db" ;;
  esac
}

# A signed-in console session for curl: prints the cookie jar's path.
console_session() { # admin_port username password
  local jar="$OUT/console-$1.jar"
  rm -f "$jar"
  curl -fs -c "$jar" -o /dev/null -X POST -H "Origin: http://127.0.0.1:$1" \
    --data-urlencode "username=$2" --data-urlencode "password=$3" \
    "http://127.0.0.1:$1/sign-in"
  grep -q hrb_session "$jar" || { echo "console sign-in failed" >&2; exit 1; }
  echo "$jar"
}

page_secs() { # jar url -> "median max status" of RUNS GETs
  local times=() line code=""
  for _ in $(seq 1 "$RUNS"); do
    line=$(curl -s -o /dev/null -b "$1" -w '%{time_total} %{http_code}' "$2")
    times+=("${line% *}")
    code=${line#* }
  done
  echo "$(median "${times[@]}") $(python3 -c 'import sys; print("%.3f" % max(float(x) for x in sys.argv[1:]))' "${times[@]}") $code"
}

COMPARE_ROWS=()
GUARD_ROWS=()
PAGE_ROWS=()
HAMMER_ROWS=()

for backend in $BACKENDS; do
  for size in $SIZES; do
    tag="${backend}_$size"
    url_new=$(fresh_db "$backend" "hrb_hist_new_$tag")
    seed "$NEW" "$url_new" "$size" "hist-new-$tag"
    password=$SEED_PASSWORD
    port_new=$(free_port)
    admin_port=$(free_port)
    operator="user$(printf "%0${#size}d" $((size - 1)))" # stays active when the first fifth leaves
    printf '[admin]\nlisten = "127.0.0.1:%s"\noperators = ["%s"]\n' "$admin_port" "$operator" >"$OUT/console-$tag.toml"
    SERVE_ARGS=(--config "$OUT/console-$tag.toml")
    BIN=$NEW start_server "$url_new" "$port_new"
    SERVE_ARGS=()
    pid_new=$SERVER_PID
    curl_sync "$port_new" >/dev/null
    if [ "$COMPARE" = 1 ]; then
      # 1. Side by side with the baseline on its own copy of the same data,
      # calls alternated, one warm-up each.
      url_old=$(fresh_db "$backend" "hrb_hist_old_$tag")
      seed "$OLD" "$url_old" "$size" "hist-old-$tag"
      port_old=$(free_port)
      BIN=$OLD start_server "$url_old" "$port_old"
      pid_old=$SERVER_PID
      curl_sync "$port_old" >/dev/null
      olds=() news=()
      for _ in $(seq 1 "$RUNS"); do
        olds+=("$(call_secs "$port_old")")
        news+=("$(call_secs "$port_new")")
      done
      bytes_old=$(curl_sync "$port_old" | cut -d' ' -f3)
      bytes_new=$(curl_sync "$port_new" | cut -d' ' -f3)
      [ "$bytes_old" = "$bytes_new" ] || echo "warning: payloads differ: $bytes_old vs $bytes_new bytes" >&2
      # One changed sync each (100 employees edited): history diffs and keeps names.
      for name in "hrb_hist_old_$tag" "hrb_hist_new_$tag"; do
        sql_in "$backend" "$name" "UPDATE employees SET phone1 = 'changed' WHERE username IN (SELECT username FROM (SELECT username FROM employees ORDER BY username LIMIT 100) AS first_ones)" >/dev/null
      done
      changed_old=$(printf "%.3f" "$(call_secs "$port_old")")
      changed_new=$(printf "%.3f" "$(call_secs "$port_new")")
      stop_server "$pid_old"
      m_old=$(median "${olds[@]}")
      m_new=$(median "${news[@]}")
      COMPARE_ROWS+=("| $backend | $size | $m_old | $m_new | $(ratio "$m_new" "$m_old") | $changed_old | $changed_new | $(peak_rss_mb "$pid_new") |")
    fi

    # 2. One employee in five leaves at once: the guard refuses, history and the
    # pending approval keep the set; refused three times.
    drops=$((size / 5))
    sql_in "$backend" "hrb_hist_new_$tag" "UPDATE employees SET active = FALSE WHERE username < 'user$(printf "%0${#size}d" "$drops")'" >/dev/null
    first=$(curl_sync "$port_new")
    read -r refused_s refused_code _ <<<"$first"
    refused_s=$(printf "%.3f" "$refused_s")
    rss_refused=$(peak_rss_mb "$pid_new")
    settle "$backend" "hrb_hist_new_$tag" "$drops"
    read -r h1 n1 d1 <<<"$(kept_rows "$backend" "hrb_hist_new_$tag")"
    b1=$(db_bytes "$backend" "hrb_hist_new_$tag")
    again=$(printf "%.3f" "$(call_secs "$port_new")")
    call_secs "$port_new" >/dev/null
    settle "$backend" "hrb_hist_new_$tag" "$drops"
    read -r h3 n3 d3 <<<"$(kept_rows "$backend" "hrb_hist_new_$tag")"
    b3=$(db_bytes "$backend" "hrb_hist_new_$tag")
    GUARD_ROWS+=("| $backend | $size | $drops | $refused_code | $refused_s | $again | $rss_refused | $h1 / $n1 / $d1 | $h3 / $n3 / $d3 | $((b1 / 1048576)) → $((b3 / 1048576)) |")

    # 3. The console with HISTORY_ROWS more calls in history, the set pending.
    fake_history "$backend" "hrb_hist_new_$tag" "$HISTORY_ROWS"
    jar=$(console_session "$admin_port" "$operator" "$password")
    refusal_id=$(sql_in "$backend" "hrb_hist_new_$tag" "SELECT MAX(id) FROM sync_history WHERE outcome = 'refused_guard'")
    middle_id=$((HISTORY_ROWS / 2))
    middle_drop="u%3Auser$(printf "%0${#size}d" $((size / 2)))"
    c="http://127.0.0.1:$admin_port"
    for path in "/" "/history" "/history?before=$middle_id" "/history/$refusal_id" \
      "/history?person=user$(printf "%0${#size}d" 7)" "/history/$refusal_id?page=49" \
      "/pending" "/pending?after=$middle_drop" "/pending?at=last" \
      "/pending?q=user$(printf "%0${#size}d" 4242)" "/problems" "/logins" \
      "/logins?person=$operator" "/logins.csv" "/activity"; do
      read -r p_med p_max p_code <<<"$(page_secs "$jar" "$c$path")"
      PAGE_ROWS+=("| $backend | $size | \`$path\` | $p_code | $(python3 -c "print(round($p_med * 1000, 1))") | $(python3 -c "print(round($p_max * 1000, 1))") |")
    done

    # 4. Approve, serve, then /sync alone and /sync while a console client
    # requests pages back to back, alternated.
    HR_BRIDGE__DATABASE__URL=$url_new "$NEW" accept-deletions --yes --reason bench >/dev/null
    served_code=$(call_status "$port_new")
    [ "$served_code" = 200 ] || echo "warning: /sync after approval answered $served_code" >&2
    alone=() busy=()
    : >"$OUT/hammer-$tag.txt"
    for _ in $(seq 1 "$RUNS"); do
      alone+=("$(call_secs "$port_new")")
      # One client on one kept-alive connection, one request after another, as
      # a browser tab being clicked through as fast as it answers (one curl
      # process for all of them, so the client's own cost stays small).
      curl -s -b "$jar" -w '%{stderr}%{time_total}\n' "$c/history?n=[1-1000000]" \
        >/dev/null 2>>"$OUT/hammer-$tag.txt" &
      hammer=$!
      sleep 0.5
      busy+=("$(call_secs "$port_new")")
      kill "$hammer" 2>/dev/null; wait "$hammer" 2>/dev/null || true
    done
    pages=$(python3 -c "import sys; n=sum(1 for _ in open(sys.argv[1])); print(n)" "$OUT/hammer-$tag.txt")
    a=$(median "${alone[@]}")
    b=$(median "${busy[@]}")
    HAMMER_ROWS+=("| $backend | $size | $a | $b | $(ratio "$b" "$a") | $pages |")
    stop_server "$pid_new"
  done
done

{
  echo "### /sync with sync history (this build) against $BASELINE (before history), same data, calls alternated"
  echo
  echo "| backend | employees | before median s | now median s | now / before | changed sync before s | changed sync now s | peak RSS MB now |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${COMPARE_ROWS[@]}"
  echo
  echo "### a guard refusal of one employee in five: what history and the pending approval keep"
  echo
  echo "| backend | employees | drops | status | first refusal s | repeated refusal s | peak RSS MB | calls / names / drops kept after 1 | after 3 | history tables MB (SQLite: file) 1 → 3 |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${GUARD_ROWS[@]}"
  echo
  echo "### console pages with $HISTORY_ROWS more history rows and the drops pending (curl, median of $RUNS)"
  echo
  echo "| backend | employees | page | status | median ms | slowest ms |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${PAGE_ROWS[@]}"
  echo
  echo "### /sync alone and while one console client requests /history back to back"
  echo
  echo "| backend | employees | alone median s | with console median s | ratio | console pages answered over the runs |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${HAMMER_ROWS[@]}"
  echo
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); baseline $(git rev-parse --short "$BASELINE"), now $(git rev-parse --short HEAD)"
} | tee "$OUT/history.md"
