#!/usr/bin/env bash
# Starts kwok (v0.7.0) beside the local cluster and registers simulated nodes, for the scale
# benchmark (bench/). kwok manages only nodes annotated kwok.x-k8s.io/node=fake, never the real
# node; the fake nodes are tainted kwok.x-k8s.io/node=fake:NoSchedule and labelled type=kwok, so
# only pods that tolerate the taint (and select type=kwok) land on them.
#   usage: kwok.sh [NODES]   (default 4)
#   KWOK_COMPLETE_DELAY_MS=N : a Job's pod succeeds N ms after it runs (default 0)
# Pod stages: bench/kwok/pod-stages.yaml (the delay substituted). kwok restarts when they changed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
nodes=${1:-4}
delay=${KWOK_COMPLETE_DELAY_MS:-0}
[[ $delay =~ ^[0-9]+$ ]] || die "KWOK_COMPLETE_DELAY_MS must be a whole number of milliseconds"
bash "$here/build-binaries.sh" kwok
# The add-ons as this checkout has them: the volume provisioner's helper pods tolerate every taint
# and must be kept off the fake nodes (cluster/addons/local-path.yaml). A changed configuration
# takes effect when the provisioner restarts.
changed=$(apply_addons)
if grep -q 'local-path-config' <<<"$changed"; then
  log "local-path-provisioner: new configuration, restarting it"
  kc -n local-path-storage rollout restart deploy/local-path-provisioner >/dev/null
  kc -n local-path-storage rollout status deploy/local-path-provisioner --timeout=120s >/dev/null
fi
mkdir -p "$RUN_DIR"
config=$RUN_DIR/kwok-stages.yaml
sed "s/@COMPLETE_DELAY_MS@/$delay/" "$here/../bench/kwok/pod-stages.yaml" > "$config.new"
if ! cmp -s "$config.new" "$config"; then
  mv "$config.new" "$config"
  stop_daemon kwok
else
  rm -f "$config.new"
fi
# kwok's own flags, after its global --config (the stages). --manage-nodes-with-annotation-selector
# excludes --manage-all-nodes (leave it unset). Fake pod IPs come from 10.250.0.0/16, away from the
# real pods (10.244.0.0/16), the Services (10.96.0.0/16) and the machine (192.0.2.0/24).
start_daemon kwok "$KWOK_BIN/kwok" --config="$config" --kubeconfig="$KUBECONFIG_ADMIN" \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --cidr=10.250.0.0/16 --node-ip=10.250.0.1
sleep 1
pid_alive kwok || die "kwok exited at once: see $LOGS/kwok.log"
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
  allocatable: {cpu: "1000", memory: 4Ti, pods: "5000"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "5000"}
YAML
done
wait_for "kwok nodes Ready" 60 bash -c "[ \$(kubectl --kubeconfig $KUBECONFIG_ADMIN get nodes -l type=kwok --no-headers | grep -c ' Ready') -ge $nodes ]"
log "kwok manages $nodes simulated nodes (label type=kwok, pods complete after ${delay} ms)"
