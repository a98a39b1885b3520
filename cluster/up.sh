#!/usr/bin/env bash
# Brings up (or checks) the machine-global single-node cluster. Idempotent: when every component
# runs and the cluster is healthy it only says so. See docs/local-cluster.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (the cluster runs containerd and the kubelet on this machine)"
t0=$(date +%s)

healthy() {
  [ -f "$KUBECONFIG_ADMIN" ] || return 1
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do pid_alive $c || return 1; done
  kc get --raw /readyz >/dev/null 2>&1 || return 1
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] || return 1
  kc -n kube-system rollout status deploy/coredns --timeout=1s >/dev/null 2>&1 || return 1
  kc -n local-path-storage rollout status deploy/local-path-provisioner --timeout=1s >/dev/null 2>&1 || return 1
}
if [ "${1:-}" != --force ] && healthy; then log "cluster is up (KUBECONFIG=$KUBECONFIG_ADMIN)"; exit 0; fi

# 1. Debian packages.
need=()
for p in containerd runc containernetworking-plugins iptables conntrack socat debootstrap ethtool openssl gcc libc6-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v kubectl >/dev/null || die "kubectl is missing"

# 2. Binaries and images (cached; a no-op when already built).
bash "$here/build-binaries.sh"
bash "$here/build-images.sh"

# 3. Kernel settings, certificates, configuration.
sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288 net.ipv4.ip_forward=1 || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
bash "$here/pki.sh"
ip=$(host_ip)
mkdir -p "$MMIF_CLUSTER_STATE"/{etcd,kubelet,containerd,cni/net.d,cni/ipam,volumes} "$RUN_DIR" "$LOGS"

write_if_changed "$MMIF_CLUSTER_STATE/containerd/config.toml" <<TOML
version = 2
root = "$MMIF_CLUSTER_STATE/containerd/root"
state = "$RUN_DIR/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No process here may lower its oom_score_adj (CAP_SYS_RESOURCE is missing).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$MMIF_CLUSTER_STATE/cni/net.d"
TOML

write_if_changed "$MMIF_CLUSTER_STATE/cni/net.d/10-mmif.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "mmif-local",
  "plugins": [
    {"type": "bridge", "bridge": "mmifbr0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$MMIF_CLUSTER_STATE/cni/ipam",
              "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON

write_if_changed "$MMIF_CLUSTER_STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: $CLUSTER_DOMAIN
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
# The machine lacks CAP_SYS_RESOURCE and caps open files at 20000.
oomScoreAdj: 0
maxOpenFiles: 20000
failSwapOn: false
# Images are imported locally and cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
podCIDR: $NODE_POD_CIDR
maxPods: 250
serializeImagePulls: false
YAML

write_if_changed "$MMIF_CLUSTER_STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0}
YAML

# 4. Daemons, in dependency order.
start_daemon containerd containerd --config "$MMIF_CLUSTER_STATE/containerd/config.toml"
wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
bash "$here/load-images.sh" "$IMAGES"/pause-3.10.tar "$IMAGES"/coredns-$COREDNS_VERSION.tar \
  "$IMAGES"/local-path-provisioner-$LOCALPATH_VERSION.tar "$IMAGES"/debian-python-bookworm.tar

start_daemon etcd "$ETCD_BIN/etcd" --name mmif-local --data-dir "$MMIF_CLUSTER_STATE/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster mmif-local=http://127.0.0.1:2380 --quota-backend-bytes=8589934592
wait_for etcd 30 curl -sf http://127.0.0.1:2379/health

start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --advertise-address="$ip" --bind-address=0.0.0.0 --secure-port=6443 \
  --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range=30000-32767 \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname --profiling=false --v=1
wait_for kube-apiserver 90 kc get --raw /readyz

start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$PKI/controller-manager.kubeconfig" --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$POD_CIDR" --allocate-node-cidrs=false \
  --kube-api-qps=100 --kube-api-burst=200 --concurrent-job-syncs=20 --v=1
# --pod-max-in-unschedulable-pods-duration: a pod found unschedulable because its PVC was not bound
# yet is normally requeued by the PVC's update event; CI once saw that requeue missed (the PV
# controller binds in two writes) and the pod waited for the default 5-minute flush, longer than
# the tests wait. 15 s bounds such a stall on this one-node test cluster.
start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$PKI/scheduler.kubeconfig" \
  --authentication-kubeconfig="$PKI/scheduler.kubeconfig" --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --pod-max-in-unschedulable-pods-duration=15s --v=1
start_daemon kubelet "$K8S_BIN/kubelet" --config="$MMIF_CLUSTER_STATE/kubelet/config.yaml" \
  --kubeconfig="$PKI/kubelet.kubeconfig" --root-dir="$MMIF_CLUSTER_STATE/kubelet" \
  --hostname-override="$NODE_NAME" --node-ip="$ip" --v=1
start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$MMIF_CLUSTER_STATE/kube-proxy.yaml" --v=1

wait_for "node $NODE_NAME to be Ready" 120 \
  bash -c "[ \"\$(kubectl --kubeconfig $KUBECONFIG_ADMIN get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"

# 5. Add-ons: DNS and the default StorageClass.
apply_addons >/dev/null
kc -n kube-system rollout status deploy/coredns --timeout=120s >/dev/null
kc -n local-path-storage rollout status deploy/local-path-provisioner --timeout=120s >/dev/null
log "cluster is up in $(( $(date +%s) - t0 ))s: KUBECONFIG=$KUBECONFIG_ADMIN"
