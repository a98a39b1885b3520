#!/usr/bin/env bash
# Stops everything up.sh started and removes the cluster's state (certificates, etcd data,
# volumes, containers, network rules). The build cache ($MMIF_CLUSTER_CACHE) stays.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

for c in kwok kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon $c; done

# Containers outlive containerd in their shims: kill them while containerd still answers.
if pid_alive containerd; then
  for task in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
  done
  sleep 1
fi
stop_daemon containerd
pkill -9 -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
sleep 1

# Mounts left by the kubelet and containerd, innermost first.
for dir in "$MMIF_CLUSTER_STATE" "$RUN_DIR"; do
  awk -v d="$dir" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
done

# Network: kube-proxy's rules, the CNI bridge and its NAT rules.
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
for table in nat filter mangle; do
  iptables -t "$table" -S 2>/dev/null | grep -E '^-A .*-j (CNI-|KUBE-)' | sed 's/^-A/-D/' | while read -r rule; do
    eval iptables -t "$table" "$rule" 2>/dev/null || true
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/ {print $2}'); do
    iptables -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/ {print $2}'); do
    iptables -t "$table" -X "$chain" 2>/dev/null || true
  done
done
ip link del mmifbr0 2>/dev/null || true

# The pods' cgroups (kubelet's kubepods hierarchy), deepest first.
for ctl in /sys/fs/cgroup/*/; do
  [ -d "$ctl/kubepods" ] && find "$ctl/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
done

rm -rf "$MMIF_CLUSTER_STATE" "$RUN_DIR"
log "cluster removed (build cache kept in $MMIF_CLUSTER_CACHE)"
