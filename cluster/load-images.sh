#!/usr/bin/env bash
# Imports docker-archive tarballs into the cluster's containerd (namespace k8s.io), skipping
# the ones whose image is already there with the same config digest.
#   usage: load-images.sh IMAGE.tar...
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for tarball in "$@"; do
  [ -f "$tarball" ] || die "no image archive $tarball"
  read -r tag config < <(python3 -c 'import json,sys,tarfile
m=json.load(tarfile.open(sys.argv[1]).extractfile("manifest.json"))[0]
print(m["RepoTags"][0], m["Config"].split(".")[0])' "$tarball")
  have=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls "name==docker.io/$tag" "name==$tag" 2>/dev/null | awk 'NR>1 {print $3}' | head -1)
  if [ -n "$have" ] && ctr --address "$CONTAINERD_SOCK" -n k8s.io content get "$have" 2>/dev/null | grep -q "$config"; then
    continue
  fi
  log "importing $tag"
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$tarball" >/dev/null
done
