#!/usr/bin/env bash
# Builds the images the cluster itself needs, without a registry, as docker-archive tarballs
# cached under $MMIF_CLUSTER_CACHE/images (keyed by version):
#   pause (the pod sandbox), coredns, local-path-provisioner, and the Debian + Python base image
#   that the project's images and the provisioner's helper pods use.
# The project's own images are built by images/build.sh on top of the base image.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$IMAGES"
mk() { python3 "$here/images/mkimage.py" "$@" >/dev/null; }

# pause: a static C program (cluster/images/pause.c).
out=$IMAGES/pause-3.10.tar
if [ ! -f "$out" ]; then
  log "building $PAUSE_IMAGE"
  gcc -Os -static -o "$IMAGES/pause.bin" "$here/images/pause.c"
  mk --tag "$PAUSE_IMAGE" --out "$out" --file "$IMAGES/pause.bin:/pause:0755" --entrypoint '["/pause"]' --user 65535:65535
fi

# base: a debootstrap'd Debian bookworm with Python 3.11 (about a minute, once per machine).
out=$IMAGES/debian-python-bookworm.tar
if [ ! -f "$out" ]; then
  log "building $BASE_IMAGE with debootstrap"
  root=$IMAGES/rootfs-bookworm
  rm -rf "$root"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >"$IMAGES/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see $IMAGES/debootstrap.log"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  mk --tag "$BASE_IMAGE" --out "$out" --layer-dir "$root" --cmd '["python3"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8
fi
# single static Go binaries: coredns and the local-path provisioner.
out=$IMAGES/coredns-$COREDNS_VERSION.tar
[ -f "$out" ] || { log "building $COREDNS_IMAGE"; mk --tag "$COREDNS_IMAGE" --out "$out" \
  --file "$MMIF_CLUSTER_CACHE/bin/coredns-$COREDNS_VERSION/coredns:/coredns:0755" --entrypoint '["/coredns"]' --user 65532:65532; }
out=$IMAGES/local-path-provisioner-$LOCALPATH_VERSION.tar
[ -f "$out" ] || { log "building $LOCALPATH_IMAGE"; mk --tag "$LOCALPATH_IMAGE" --out "$out" \
  --file "$MMIF_CLUSTER_CACHE/bin/local-path-provisioner-$LOCALPATH_VERSION/local-path-provisioner:/usr/bin/local-path-provisioner:0755" \
  --entrypoint '["/usr/bin/local-path-provisioner"]'; }

log "system images ready in $IMAGES"
