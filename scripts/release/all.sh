#!/bin/sh
# The whole release on one machine: both single executables, both Debian packages, lintian on
# each, systemd-analyze verify on the unit, and the arm64 executable under qemu-user.
#   scripts/release/all.sh        (writes dist/release/)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/dist/release
cd "$root"

node scripts/release/release.mjs --out "$out" x64 arm64 2>/dev/null
for arch in x64 arm64; do node scripts/release/buildDeb.mjs --out "$out" "$arch"; done
version=$(node -p 'require("./package.json").version')-1
ls -l "$out"/smarthost-linux-x64 "$out"/smarthost-linux-arm64 "$out/smarthost_${version}_amd64.deb" "$out/smarthost_${version}_arm64.deb"

# As nobody when root: lintian unpacks what it checks and advises against root. With
# --show-overrides it exits 2 for an overridden error too, so the verdict is the report itself (no
# E: or W: line left); exit 1 is lintian's own failure.
lint() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp lintian --show-overrides "$@"
  else lintian --show-overrides "$@"; fi
}
for deb in "$out/smarthost_${version}_amd64.deb" "$out/smarthost_${version}_arm64.deb"; do
  rc=0
  report=$(lint "$deb" 2>&1) || rc=$?
  if [ "$rc" = 1 ]; then echo "lintian failed: $report" >&2; exit 1; fi
  echo "$report" | grep -v '^N:' || true
  if echo "$report" | grep -q '^[EW]:'; then echo "lintian $(basename "$deb"): FAILED"; exit 1; fi
  echo "lintian $(basename "$deb"): clean (O: overridden in packaging/deb/lintian-overrides)"
done

# systemd-analyze verify runs without a running systemd (this machine has none): in a root made
# from the package, so it checks that ExecStart is there, plus this machine's units for the
# targets the unit's dependencies name. It reports an unknown key only as a warning: any output
# fails.
if command -v systemd-analyze >/dev/null; then
  unitroot=$(mktemp -d)
  trap 'rm -rf "$unitroot"' EXIT
  dpkg-deb --extract "$out/smarthost_${version}_amd64.deb" "$unitroot"
  cp -an /lib/systemd/system/. "$unitroot/lib/systemd/system/"
  unit=$unitroot/lib/systemd/system/smarthost.service
  if verify=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$unitroot" --man=no "$unit" 2>&1) && [ -z "$verify" ]; then
    echo "systemd-analyze verify smarthost.service ($(systemd-analyze --version | head -1)): no problems"
  else
    echo "systemd-analyze verify smarthost.service: $verify" >&2; exit 1
  fi
  systemd-analyze security --offline=true --root="$unitroot" "$unit" 2>/dev/null | tail -1 || true
else
  echo "systemd-analyze: not installed, unit not verified"
fi

scripts/release/checkArm64.sh "$out/smarthost-linux-arm64"
