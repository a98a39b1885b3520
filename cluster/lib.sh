# Shared by the cluster scripts: paths, names and small helpers. Source it; do not run it.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/versions.env"
export MMIF_CLUSTER_CACHE MMIF_CLUSTER_STATE
RUN_DIR=/run/mmif-cluster
PKI=$MMIF_CLUSTER_STATE/pki
LOGS=$MMIF_CLUSTER_STATE/logs
KUBECONFIG_ADMIN=$MMIF_CLUSTER_STATE/admin.kubeconfig
CONTAINERD_SOCK=$RUN_DIR/containerd.sock
NODE_NAME=mmif-local
CLUSTER_DOMAIN=cluster.local
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
K8S_BIN=$MMIF_CLUSTER_CACHE/bin/kubernetes-$K8S_VERSION
ETCD_BIN=$MMIF_CLUSTER_CACHE/bin/etcd-$ETCD_VERSION
KWOK_BIN=$MMIF_CLUSTER_CACHE/bin/kwok-$KWOK_VERSION
IMAGES=$MMIF_CLUSTER_CACHE/images
PAUSE_IMAGE=registry.k8s.io/pause:3.10
BASE_IMAGE=mmif.local/debian-python:bookworm
COREDNS_IMAGE=mmif.local/coredns:$COREDNS_VERSION
LOCALPATH_IMAGE=mmif.local/local-path-provisioner:$LOCALPATH_VERSION

log() { echo "[cluster $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

host_ip() { ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") {print $(i+1); exit}}'; }

kc() { "$(command -v kubectl)" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

pid_alive() { local f=$RUN_DIR/pids/$1.pid; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# start_daemon NAME CMD... : start CMD in the background (own session) unless NAME runs already.
start_daemon() {
  local name=$1; shift
  if pid_alive "$name"; then return 0; fi
  mkdir -p "$RUN_DIR/pids" "$LOGS"
  log "starting $name"
  # The daemon outlives whatever started it: it inherits no descriptor beyond stdio. Started
  # under `flock /tmp/mmif-cluster.lock make cluster`, every daemon kept the lock file open and
  # the lock stayed held for as long as the cluster ran.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done 2>/dev/null
    exec setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null
  ) &
  echo $! > "$RUN_DIR/pids/$name.pid"
}

stop_daemon() {
  local name=$1 f=$RUN_DIR/pids/$1.pid
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_for DESCRIPTION SECONDS CMD... : poll CMD every second until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  for _ in $(seq "$secs"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "timed out after ${secs}s waiting for $what"
}

# write_if_changed FILE < CONTENT : replace FILE only when CONTENT differs (kube-proxy, for one,
# exits when its configuration file is written to).
write_if_changed() {
  local tmp; tmp=$(mktemp "$1.XXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# apply_addons: the add-ons (cluster/addons/*.yaml, placeholders filled in); prints what kubectl
# changed ("configured"/"created" lines).
apply_addons() {
  local f out
  out=$(for f in "$here"/addons/*.yaml; do
    sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g; s|@LOCALPATH_IMAGE@|$LOCALPATH_IMAGE|g; s|@BASE_IMAGE@|$BASE_IMAGE|g" \
        -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g; s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g; s|@VOLUMES@|$MMIF_CLUSTER_STATE/volumes|g" "$f"
    echo "---"
  done | kc apply -f -) || return 1
  grep -v unchanged <<<"$out" || true
}
