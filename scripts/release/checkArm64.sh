#!/bin/sh
# Runs the arm64 single executable on this (x64) machine under qemu-user: it must print its
# version and validate a configuration, i.e. start its bundled agent code on an arm64 Node.js.
#   scripts/release/checkArm64.sh [EXECUTABLE]   (default dist/release/smarthost-linux-arm64)
# The arm64 C and C++ runtime comes from QEMU_LD_PREFIX, /usr/aarch64-linux-gnu (apt install
# libc6-arm64-cross libstdc++6-arm64-cross) or .cache/container/bookworm-arm64, as in release.mjs.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
executable=${1:-$root/dist/release/smarthost-linux-arm64}
prefix=
for candidate in "${QEMU_LD_PREFIX:-}" /usr/aarch64-linux-gnu "$root/.cache/container/bookworm-arm64"; do
  if [ -n "$candidate" ] && [ -e "$candidate/lib/ld-linux-aarch64.so.1" ]; then prefix=$candidate; break; fi
done
[ -n "$prefix" ] || { echo "checkArm64: no arm64 runtime for qemu-user (apt install libc6-arm64-cross libstdc++6-arm64-cross)" >&2; exit 1; }
file -b "$executable" | grep -q 'ARM aarch64' || { echo "checkArm64: $executable is not an arm64 executable" >&2; exit 1; }
run() { qemu-aarch64-static -L "$prefix" "$executable" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(run --version)
expected="smarthost $(node -p 'require(process.argv[1]).version' "$root/package.json") "
case "$version" in "$expected"*) ;; *) echo "checkArm64: --version printed '$version'" >&2; exit 1 ;; esac
echo "arm64 --version: $version"

cat > "$work/smarthost.yaml" <<YAML
listen: { host: 127.0.0.1, port: 25 }
spool: { dir: $work/spool }
upstream:
  host: smtp.office365.com
  auth: { type: oauth2, tenantId: contoso.com, clientId: aaaaaaaa-0000-0000-0000-000000000001, clientSecret: "\${SMARTHOST_CLIENT_SECRET}", user: relay@contoso.com }
YAML
out=$(SMARTHOST_CLIENT_SECRET=not-a-real-secret run check-config --config "$work/smarthost.yaml")
echo "$out" | grep -q '^# configuration is valid' || { echo "checkArm64: check-config printed: $out" >&2; exit 1; }
if echo "$out" | grep -q 'not-a-real-secret'; then echo "checkArm64: check-config printed the secret" >&2; exit 1; fi
echo "arm64 check-config: $(echo "$out" | head -1), $(echo "$out" | wc -l) lines, secret masked"
# A bad key must be an error naming it (exit code not 0).
printf 'listen: { prot: 25 }\n' > "$work/bad.yaml"
if bad=$(run check-config --config "$work/bad.yaml" 2>&1); then echo "checkArm64: a bad key passed: $bad" >&2; exit 1; fi
echo "$bad" | grep -q 'prot' || { echo "checkArm64: the error does not name the key: $bad" >&2; exit 1; }
echo "arm64 check-config of a bad key: $(echo "$bad" | tail -1 | sed 's/^ *//')"
