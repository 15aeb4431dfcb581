# Shared by scripts/container-ci.sh and scripts/container-full-build.sh (source it
# from the repository root): podman set up for this machine with everything it
# keeps under target/container, the local Debian base image, and the smoke test
# every image must pass.
#
# Podman is configured through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF files of
# our own instead of /etc/containers, so nothing outside the repository changes:
#   - runc, because crun refuses this host's hybrid cgroups, with cgroupfs;
#   - default ulimits no higher than the hard limits podman's own processes have
#     (podman asks for 1048576 open files by default, which runc cannot set here);
#   - images and containers in target/container/storage.

WORK="$PWD/target/container"
BASE_IMAGE=localhost/hr-bridge-base:bookworm
BUILDER_IMAGE=localhost/hr-bridge-builder:bookworm
DEBOOTSTRAP_CACHE=${HR_BRIDGE_CI_DEBOOTSTRAP_CACHE:-/var/cache/hr-bridge-ci/debootstrap}
# Free loopback ports unless given (a fixed port may be taken on a shared machine).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
SQLITE_PORT=${HR_BRIDGE_CI_SQLITE_PORT:-$(free_port)}
POSTGRES_PORT=${HR_BRIDGE_CI_POSTGRES_PORT:-$(free_port)}
PG_ADMIN_URL=${HR_BRIDGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

step() { printf '\n==== %s (at %ds)\n' "$*" "$SECONDS"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs podman, buildah, runc, debootstrap (and curl, python3-venv) with apt
# when any is missing.
container_tools() {
    local missing=()
    for tool in podman buildah runc debootstrap curl psql; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing with apt: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            podman buildah runc debootstrap curl python3-venv postgresql-client >/dev/null
    fi
}

# Writes our podman configuration and points podman at it.
podman_setup() {
    mkdir -p "$WORK"
    local nofile nproc pid_max
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max)
    [ "$nofile" = unlimited ] && nofile=1048576
    # conmon runs with at most pid_max processes; asking for more is refused.
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
    cat > "$WORK/containers.conf" <<EOF
# Written by scripts/container-lib.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    cat > "$WORK/storage.conf" <<EOF
# Written by scripts/container-lib.sh.
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
    export CONTAINERS_CONF="$WORK/containers.conf"
    export CONTAINERS_STORAGE_CONF="$WORK/storage.conf"
}

# The Debian mirror apt already uses for `suite` (bookworm, bookworm-security).
apt_mirror() {
    local uri
    uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk -v suite="$1" '$2 == suite { print $1; exit }')
    [ -n "$uri" ] || fail "apt has no source for $1"
    printf '%s\n' "${uri%/}"
}

# localhost/hr-bridge-base:bookworm, a minbase debootstrap of bookworm from apt's
# mirror, imported into podman. The tarball is kept under target/container.
base_image() {
    podman image exists "$BASE_IMAGE" && return 0
    local tarball="$WORK/bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
        as_root rm -rf "$WORK/rootfs"
        # The packages are kept outside the clone, as cargo keeps its downloads,
        # so that a later clean clone on this machine does not fetch them again.
        as_root mkdir -p "$DEBOOTSTRAP_CACHE"
        as_root debootstrap --variant=minbase --cache-dir="$DEBOOTSTRAP_CACHE" \
            bookworm "$WORK/rootfs" "$(apt_mirror bookworm)" \
            > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail debootstrap; }
        as_root tar -C "$WORK/rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        as_root rm -rf "$WORK/rootfs"
    fi
    podman import --quiet "$tarball" "$BASE_IMAGE" >/dev/null
}

# Waits until `url` answers 200 (up to 30 s) while container `name` runs.
wait_http() {
    local name=$1 url=$2
    for _ in $(seq 1 60); do
        curl -fsSk -o /dev/null "$url" 2>/dev/null && return 0
        [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] ||
            { podman logs "$name" | tail -20; fail "$name exited before answering $url"; }
        sleep 0.5
    done
    podman logs "$name" | tail -20
    fail "$url did not answer within 30 s"
}

remove_containers() {
    podman rm -f -v -t 0 hrb-ci-sqlite hrb-ci-postgres >/dev/null 2>&1 || true
}

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" "$@"; }

drop_ci_database() {
    psql_admin -c "DROP DATABASE IF EXISTS hrb_container_ci WITH (FORCE)" >/dev/null 2>&1 || true
}

# Runs `name` (already started with `serve --demo`, answering at `base`) through
# the checks every image must pass: /healthz, /readyz, a /sync with the demo
# employees, the non-root user, the image's HEALTHCHECK, and a clean stop.
check_running() {
    local name=$1 base=$2 password=$3
    wait_http "$name" "$base/healthz"
    curl -fsSk -o /dev/null "$base/readyz" || fail "$name: /readyz"
    local users
    users=$(curl -fsSk -u "omflow:$password" -X POST "$base/sync" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["user_info_list"]))') ||
        fail "$name: /sync"
    [ "$users" -gt 0 ] || fail "$name: /sync served no users"
    echo "$name: /sync served $users users"

    local pid uid
    pid=$(podman inspect -f '{{.State.Pid}}' "$name")
    uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
    [ "$uid" = 10001 ] || fail "$name runs as uid $uid, not 10001"
    echo "$name: runs as uid $uid"

    # Without systemd podman logs that it cannot add the periodic healthcheck
    # timer; `podman healthcheck run` runs the image's HEALTHCHECK all the same.
    podman healthcheck run "$name" || fail "$name: HEALTHCHECK reports unhealthy"
    echo "$name: HEALTHCHECK healthy"

    # podman stop sends SIGTERM and SIGKILL after the grace period: exit 0 well
    # inside it proves the server shut down by itself.
    local grace=30 started elapsed_ms code
    started=$(date +%s%N)
    podman stop -t "$grace" "$name" >/dev/null
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
    [ "$code" = 0 ] || { podman logs "$name" | tail -20; fail "$name exited with $code on podman stop"; }
    [ "$elapsed_ms" -lt $((grace * 1000)) ] || fail "$name took ${elapsed_ms} ms to stop (grace ${grace}s)"
    echo "$name: podman stop -> exit 0 after ${elapsed_ms} ms"
    if podman logs "$name" 2>&1 | grep -qF "$password"; then
        fail "$name logged the OMFLOW password"
    fi
}

# The smoke test of `image`: over SQLite (its own volume, the image's defaults,
# a published port) and over the local PostgreSQL (host network), both with a
# read-only root filesystem as in deploy/kubernetes.
smoke_test() {
    local image=$1 password
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    remove_containers
    drop_ci_database

    step "$image: --version and HEALTHCHECK kept"
    podman run --rm "$image" --version
    podman image inspect -f '{{.Config.Healthcheck.Test}}' "$image" | grep -q healthcheck ||
        fail "the image lost its HEALTHCHECK (build with --format docker)"

    step "$image: over SQLite"
    podman run -d --name hrb-ci-sqlite --read-only -p "127.0.0.1:$SQLITE_PORT:8080" \
        -e HR_BRIDGE__OMFLOW__USERNAME=omflow -e HR_BRIDGE__OMFLOW__PASSWORD="$password" \
        "$image" serve --demo >/dev/null
    check_running hrb-ci-sqlite "http://127.0.0.1:$SQLITE_PORT" "$password"

    step "$image: over PostgreSQL"
    psql_admin -c "CREATE DATABASE hrb_container_ci" >/dev/null
    local db_url="${PG_ADMIN_URL%/*}/hrb_container_ci"
    podman run -d --name hrb-ci-postgres --read-only --network host \
        -e HR_BRIDGE__SERVER__LISTEN="127.0.0.1:$POSTGRES_PORT" \
        -e HR_BRIDGE__DATABASE__URL="$db_url" \
        -e HR_BRIDGE__OMFLOW__USERNAME=omflow -e HR_BRIDGE__OMFLOW__PASSWORD="$password" \
        "$image" serve --demo >/dev/null
    check_running hrb-ci-postgres "http://127.0.0.1:$POSTGRES_PORT" "$password"
    podman run --rm --read-only --network host -e HR_BRIDGE__DATABASE__URL="$db_url" \
        "$image" check || fail "hr-bridge check in the image"

    remove_containers
    drop_ci_database
}
