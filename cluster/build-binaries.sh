#!/usr/bin/env bash
# Builds the pinned upstream binaries of the local cluster from the Go module proxy and caches
# them under $MMIF_CLUSTER_CACHE/bin/<component>-<version>/. A component whose cache directory
# holds a .complete marker is not rebuilt.
#   usage: build-binaries.sh [kubernetes] [etcd] [coredns] [local-path-provisioner] [kwok]   (default: all but kwok)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
log() { echo "[build-binaries] $*" >&2; }

wrapper_dir() { local d="$MMIF_CLUSTER_CACHE/src/$1"; mkdir -p "$d"; echo "$d"; }

go_line() { grep -E '^go [0-9]' "$1" | head -1; }

build_kubernetes() {
  local v=$K8S_VERSION out="$MMIF_CLUSTER_CACHE/bin/kubernetes-$K8S_VERSION"
  [ -f "$out/.complete" ] && return 0
  log "building Kubernetes $v (cold: tens of minutes on 2 cores)"
  local minor=${v#v1.}; minor=${minor%%.*}
  local staging="v0.${v#v1.}"
  local src; src=$(wrapper_dir "kubernetes-$v")
  local mod; mod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module mmif.dev/localcluster/kubernetes"
    go_line "$mod"
    grep -E '^godebug ' "$mod" || true
    echo "require k8s.io/kubernetes $v"
    # Upstream replaces each staging module with a local path; use its published tag instead.
    grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$mod" | awk -v s="$staging" '{print "replace " $1 " => " $1 " " s}'
  } > "$src/go.mod"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  mkdir -p "$out"
  (cd "$src" && go build -trimpath -tags=selinux,notest -ldflags "$ld" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  touch "$out/.complete"
}

build_simple() {  # name module package version [replace-free wrapper]
  local name=$1 module=$2 pkg=$3 v=$4 out="$MMIF_CLUSTER_CACHE/bin/$1-$4"
  [ -f "$out/.complete" ] && return 0
  log "building $name $v"
  local src; src=$(wrapper_dir "$name-$v")
  local mod; mod=$(cd "$src" && go mod download -json "$module@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  { echo "module mmif.dev/localcluster/$name"; go_line "$mod"; echo "require $module $v"; } > "$src/go.mod"
  mkdir -p "$out"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/$name" "$pkg")
  touch "$out/.complete"
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(kubernetes etcd coredns local-path-provisioner)
for t in "${targets[@]}"; do
  case $t in
    kubernetes) build_kubernetes ;;
    etcd) build_simple etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 "$ETCD_VERSION" ;;
    coredns) build_simple coredns github.com/coredns/coredns github.com/coredns/coredns "$COREDNS_VERSION" ;;
    kwok) build_simple kwok sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" ;;
    local-path-provisioner) build_simple local-path-provisioner github.com/rancher/local-path-provisioner github.com/rancher/local-path-provisioner "$LOCALPATH_VERSION" ;;
    *) echo "unknown component: $t" >&2; exit 2 ;;
  esac
done
