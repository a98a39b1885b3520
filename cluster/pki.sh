#!/usr/bin/env bash
# Creates the cluster's certificates and keys under $MMIF_CLUSTER_STATE/pki (once; kept until
# `make cluster-down`), and the kubeconfigs of the admin and of each component.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$PKI"; cd "$PKI"
ip=$(host_ip)

[ -f ca.crt ] || { log "creating the cluster CA"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=mmif-local-ca" 2>/dev/null; }

# cert NAME SUBJECT [SANS] : a key and a certificate signed by the cluster CA.
cert() {
  local name=$1 subj=$2 sans=${3:-}
  [ -f "$name.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  local ext="keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth"
  [ -n "$sans" ] && ext+="\nsubjectAltName=$sans"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 3650 \
    -extfile <(printf "$ext") 2>/dev/null
  rm -f "$name.csr"
}

cert apiserver "/CN=kube-apiserver" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$ip"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=kubernetes-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kube-proxy "/CN=system:kube-proxy"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
cert kubelet-serving "/CN=$NODE_NAME" "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$ip"
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

# kubeconfig NAME CERT SERVER : a kubeconfig that authenticates with the certificate CERT.
kubeconfig() {
  local file=$1 name=$2 server=$3
  [ -f "$file" ] && return 0
  KUBECONFIG=$file kubectl config set-cluster mmif-local --server="$server" --certificate-authority="$PKI/ca.crt" --embed-certs >/dev/null
  KUBECONFIG=$file kubectl config set-credentials "$name" --client-certificate="$PKI/$name.crt" --client-key="$PKI/$name.key" --embed-certs >/dev/null
  KUBECONFIG=$file kubectl config set-context mmif-local --cluster=mmif-local --user="$name" >/dev/null
  KUBECONFIG=$file kubectl config use-context mmif-local >/dev/null
}
for c in controller-manager scheduler kube-proxy kubelet; do kubeconfig "$PKI/$c.kubeconfig" "$c" "https://$ip:6443"; done
kubeconfig "$KUBECONFIG_ADMIN" admin "https://$ip:6443"
