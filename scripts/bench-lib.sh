# Shared by scripts/bench.sh and scripts/bench-history.sh (sourced, not run):
# fresh databases, seeding, a release server started and stopped, timing with
# curl from outside the process.
#
# Callers set: OUT (results directory), BIN (the hr-bridge binary to run).

PG_ADMIN_USER=${PG_ADMIN_USER:-postgres}

now_ms() { date +%s%3N; }
median() { python3 -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

fresh_db() { # backend name -> prints URL of a new, empty database called <name>
  local name=$2
  case $1 in
    postgres)
      psql -q -h 127.0.0.1 -U "$PG_ADMIN_USER" -d test -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
      echo "postgres://$PG_ADMIN_USER@127.0.0.1:5432/$name" ;;
    mysql)
      mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
      echo "mysql://root@127.0.0.1:3306/$name" ;;
    sqlite)
      rm -f "$OUT/$name.db" "$OUT/$name.db-wal" "$OUT/$name.db-shm"
      echo "sqlite://$OUT/$name.db?mode=rwc" ;;
  esac
}

sql_in() { # backend name sql -> runs sql in database <name>, prints rows (tab-separated)
  case $1 in
    postgres) psql -qAt -F $'\t' -h 127.0.0.1 -U "$PG_ADMIN_USER" -d "$2" -c "$3" ;;
    mysql) mariadb -N -B -h 127.0.0.1 -u root "$2" -e "$3" ;;
    sqlite) sqlite3 -separator $'\t' "$OUT/$2.db" "$3" ;;
  esac
}

seed() { # binary url size tag -> seeds; sets SEED_PASSWORD and SEED_MB
  local bin=$1 url=$2 size=$3 tag=$4 out
  out=$(HR_BRIDGE__DATABASE__URL=$url RUST_LOG=warn /usr/bin/time -f "seed_peak_kb=%M" -o "$OUT/seed-$tag.time" \
    "$bin" seed-demo --employees "$size" --departments $((size / 20)))
  SEED_MB=$(awk -F= '/seed_peak_kb/ {printf "%.0f", $2/1024}' "$OUT/seed-$tag.time")
  SEED_PASSWORD=${out##*password is: }
  echo "$tag: $out" >&2
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVER_PIDS=()
SERVE_ARGS=()
start_server() { # url port [extra env assignments…]; sets SERVER_PID; runs $BIN serve $SERVE_ARGS
  local url=$1 port=$2; shift 2
  env "$@" HR_BRIDGE__DATABASE__URL=$url HR_BRIDGE__SERVER__LISTEN=127.0.0.1:$port \
  HR_BRIDGE__OMFLOW__USERNAME=omflow HR_BRIDGE__OMFLOW__PASSWORD=bench \
  HR_BRIDGE__AUTH__MAX_FAILURES=0 RUST_LOG=warn "$BIN" serve "${SERVE_ARGS[@]}" 2>>"$OUT/server.log" &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not become ready (see $OUT/server.log)" >&2; exit 1
}

stop_server() { # [pid] (default: the last started)
  local pid=${1:-$SERVER_PID}
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}
stop_all_servers() { for pid in "${SERVER_PIDS[@]}"; do stop_server "$pid"; done; }
trap 'stop_all_servers 2>/dev/null || true' EXIT

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/${1:-$SERVER_PID}/status"; }

# One POST /sync from outside with curl, uncompressed: "seconds status bytes".
curl_sync() { # port
  curl -s -o /dev/null -u omflow:bench -X POST -H 'accept-encoding: identity' \
    -w '%{time_total} %{http_code} %{size_download}\n' "http://127.0.0.1:$1/sync"
}

json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
