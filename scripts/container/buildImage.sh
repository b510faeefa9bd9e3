#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile where no registry can be reached:
# the Dockerfile's two base images are replaced by local stand-ins made from Debian 12 (bookworm)
# with debootstrap and `docker load`:
#   BUILD_IMAGE   for node:24-bookworm-slim: Debian minbase + the pinned Node.js 24 + npm
#   RUNTIME_IMAGE for gcr.io/distroless/cc-debian12:nonroot: only the C and C++ runtime the
#                 executable links against (Debian's libc6, libgcc-s1, libstdc++6), /etc/passwd
#                 with user nonroot (65532), /tmp; no shell, no package manager
# The build stage's `npm ci` and `npm pack` still need the npm registry (the build runs with
# --network host).
#   sudo scripts/container/buildImage.sh [ARCH [TAG]]
# ARCH amd64 or arm64 (default: this machine's), TAG default smarthost:local-ARCH; root for
# debootstrap and chroot. Another architecture runs emulated, as under buildx: `apt install
# qemu-user-static binfmt-support` registers qemu with binfmt_misc (flag F, so it works inside
# containers); where /proc/sys/fs/binfmt_misc is empty, `mount -t binfmt_misc binfmt_misc
# /proc/sys/fs/binfmt_misc` first. One architecture per run: joining them in one manifest list is
# buildx's job, not the legacy builder's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=${1:-$(dpkg --print-architecture)}
TAG=${2:-smarthost:local-$ARCH}
case "$ARCH" in
  amd64) NODE_ARCH=x64 QEMU_CPU=x86_64 ;;
  arm64) NODE_ARCH=arm64 QEMU_CPU=aarch64 ;;
  *) echo "unsupported architecture $ARCH (amd64 or arm64)" >&2; exit 1 ;;
esac
if [ "$ARCH" != "$(dpkg --print-architecture)" ] && ! grep -qs '^enabled' "/proc/sys/fs/binfmt_misc/qemu-$QEMU_CPU"; then
  echo "$ARCH programs cannot run here: install qemu-user-static and binfmt-support (and mount binfmt_misc)" >&2
  exit 1
fi
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The npm the build stage runs, as node:24's image has one; any npm 11 runs `npm ci` on this lockfile.
NPM_VERSION=11.21.3
CACHE="$ROOT/.cache/container"
ROOTFS="$CACHE/bookworm-$ARCH"
BUILD_IMAGE=smarthost-local/node:24-bookworm-$ARCH
RUNTIME_IMAGE=smarthost-local/cc-debian12:nonroot-$ARCH

mkdir -p "$CACHE"
if [ ! -x "$ROOTFS/bin/sh" ]; then
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase --arch="$ARCH" bookworm "$ROOTFS.tmp" "$MIRROR" >"$CACHE/debootstrap-$ARCH.log"
  mv "$ROOTFS.tmp" "$ROOTFS"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
PLATFORM_JSON="\"os\":\"linux\",\"architecture\":\"$ARCH\""
if [ "$ARCH" = arm64 ]; then PLATFORM_JSON+=',"variant":"v8"'; fi

# Loads folder $1 as image $2 with the image config $3 (JSON members: Env, User, ...). Not
# `docker import`, which labels every image with the daemon's own architecture.
load_image() {
  local archive="$stage/image-archive"
  rm -rf "$archive" && mkdir -p "$archive/layer"
  tar -c --numeric-owner -C "$1" . >"$archive/layer/layer.tar"
  local diff_id
  diff_id=$(sha256sum "$archive/layer/layer.tar" | cut -d' ' -f1)
  printf '{%s,"config":{%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"scripts/container/buildImage.sh"}]}' \
    "$PLATFORM_JSON" "$3" "$diff_id" >"$archive/config.json"
  printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]' "$2" >"$archive/manifest.json"
  tar -c -C "$archive" manifest.json config.json layer/layer.tar | docker load >/dev/null
}

# Build stand-in: the whole minbase plus Node.js and npm in /usr/local, as the node image has them.
build="$stage/build"
cp -a "$ROOTFS" "$build"
rm -rf "$build"/dev/* "$build"/proc/* "$build"/sys/*
cp "$(node "$ROOT/scripts/nodeBinary.mjs" "$NODE_ARCH")" "$build/usr/local/bin/node"
mkdir -p "$build/usr/local/lib/node_modules"
(cd "$stage" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$stage"/npm-*.tgz -C "$build/usr/local/lib/node_modules"
mv "$build/usr/local/lib/node_modules/package" "$build/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$build/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$build/usr/local/bin/npx"
build_env='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
# A machine whose way out re-signs TLS (NODE_EXTRA_CA_CERTS names that CA) needs it for npm in the
# build stage too. Only the build stand-in gets it; the image is made from the runtime stand-in.
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  cp "$NODE_EXTRA_CA_CERTS" "$build/usr/local/share/build-extra-ca.crt"
  build_env+=',"NODE_EXTRA_CA_CERTS=/usr/local/share/build-extra-ca.crt"'
fi
load_image "$build" "$BUILD_IMAGE" "\"Env\":[$build_env],\"Cmd\":[\"/bin/bash\"]"

# Runtime stand-in: the files of the packages distroless/cc installs for C and C++ programs.
runtime="$stage/runtime"
mkdir -p "$runtime/etc" "$runtime/tmp" "$runtime/home/nonroot"
chmod 1777 "$runtime/tmp"
chown 65532:65532 "$runtime/home/nonroot"
# Debian 12 has merged /usr: /lib (and /lib64) are links into /usr, and each file goes where it really is.
for link in lib lib64; do
  if [ -L "$ROOTFS/$link" ]; then cp -a "$ROOTFS/$link" "$runtime/"; fi   # arm64 has no /lib64
done
chroot "$ROOTFS" dpkg -L libc6 libgcc-s1 libstdc++6 | grep -v -E '^/usr/share/(doc|lintian|man|locale)/' | sort -u | while read -r file; do
  [ -d "$ROOTFS$file" ] && continue
  dir=$(realpath "$ROOTFS$(dirname "$file")")
  (cd "$ROOTFS" && cp -a --parents ".${dir#"$ROOTFS"}/$(basename "$file")" "$runtime/")
done
cp -a "$ROOTFS/usr/lib/os-release" "$runtime/etc/os-release"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$runtime/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$runtime/etc/group"
printf 'hosts: files dns\n' >"$runtime/etc/nsswitch.conf"
load_image "$runtime" "$RUNTIME_IMAGE" '"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"User":"65532:65532","WorkingDir":"/home/nonroot"'

# The legacy builder: Debian's docker.io has no buildx, and it ignores nothing the Dockerfile needs.
DOCKER_BUILDKIT=0 docker build --network host --platform "linux/$ARCH" \
  --build-arg "BUILD_IMAGE=$BUILD_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE" \
  -t "$TAG" "$ROOT"
echo "built $TAG ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$TAG")) from $BUILD_IMAGE and $RUNTIME_IMAGE: $(docker image inspect -f '{{.Size}}' "$TAG") bytes"
