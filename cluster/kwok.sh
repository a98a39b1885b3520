#!/usr/bin/env bash
# Starts kwok beside the local cluster and registers simulated nodes, for scale benchmarks.
# kwok manages only nodes annotated kwok.x-k8s.io/node=fake, never the real node; the fake nodes
# are tainted, so only pods that tolerate kwok.x-k8s.io/node=fake:NoSchedule land on them.
#   usage: kwok.sh [NODES]   (default 4)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
nodes=${1:-4}
bash "$here/build-binaries.sh" kwok
start_daemon kwok "$KWOK_BIN/kwok" --kubeconfig="$KUBECONFIG_ADMIN" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --cidr=10.250.0.0/16 --node-ip=10.250.0.1
for i in $(seq 0 $((nodes - 1))); do
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/role: agent}
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
YAML
done
wait_for "kwok nodes Ready" 60 bash -c "[ \$(kubectl --kubeconfig $KUBECONFIG_ADMIN get nodes -l type=kwok --no-headers | grep -c ' Ready') -eq $nodes ]"
log "kwok manages $nodes simulated nodes (label type=kwok)"
