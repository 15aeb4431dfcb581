#!/usr/bin/env bash
# Checks deploy/systemd/ (README "Running with systemd") without a running systemd:
#   - `systemd-analyze verify` of the unit, in a scratch root holding the system's
#     own units, so the paths the unit names need not exist on this machine, and
#     failing on any warning (verify itself exits 0 on unknown keys or bad values);
#   - `systemd-analyze security --offline=true`: the exposure score may not rise
#     above the README's figure;
#   - the example environment file is plain KEY=value lines of hr-bridge settings.
# Installs systemd with apt when systemd-analyze is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

UNIT=deploy/systemd/hr-bridge.service
ENV_EXAMPLE=deploy/systemd/hr-bridge.env.example
# systemd-analyze's scale times ten: 11 is the README's "1.1". Lower both together
# when the unit gets stricter; a looser unit fails here.
MAX_EXPOSURE=11

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v systemd-analyze >/dev/null || [ ! -d /lib/systemd/system ]; then
    echo "installing with apt: systemd"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/lib/systemd" "$root/usr/local/bin" "$root/bin"
# The targets the unit orders itself against.
cp -a /lib/systemd/system "$root/lib/systemd/"
cp "$UNIT" "$root/etc/systemd/system/"
# verify only checks that ExecStart= and ExecReload= name executables.
install -m 0755 /bin/true "$root/usr/local/bin/hr-bridge"
install -m 0755 /bin/true "$root/bin/kill"
if ! out=$(systemd-analyze verify --root="$root" --man=no hr-bridge.service 2>&1) ||
    [ -n "$out" ]; then
    printf '%s\nFAILED: systemd-analyze verify %s\n' "$out" "$UNIT" >&2
    exit 1
fi
echo "systemd-analyze verify $UNIT: clean"

if ! out=$(systemd-analyze security --offline=true --threshold="$MAX_EXPOSURE" "$UNIT" 2>&1); then
    printf '%s\nFAILED: %s scores above the README'"'"'s exposure (threshold %s)\n' \
        "$out" "$UNIT" "$MAX_EXPOSURE" >&2
    exit 1
fi
grep 'Overall exposure level' <<<"$out"

if bad=$(grep -Evn "^(#.*|HR_BRIDGE__[A-Z_]+=('[^']*'|[^'\"[:space:]]*)|)$" "$ENV_EXAMPLE"); then
    printf '%s\nFAILED: %s holds lines that are not KEY=value settings\n' "$bad" "$ENV_EXAMPLE" >&2
    exit 1
fi
echo "$ENV_EXAMPLE: KEY=value lines only"
