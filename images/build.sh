#!/usr/bin/env bash
# Builds the project's images on the Debian + Python base image (cluster/build-images.sh) and
# loads them into the local cluster's containerd:
#   mmif.local/mmif-operator:dev      the operator and mmif-runner (the program inside step pods)
#   mmif.local/clams-<app>:dev        the CLAMS test apps of tests/apps/<app>
# Python dependencies go into a layer cached by the hash of what they come from (pyproject.toml,
# tests/apps/requirements.txt); the code layers are rebuilt each time (a second or two).
#   usage: images/build.sh [--no-load]
set -euo pipefail; shopt -s inherit_errexit
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/cluster/lib.sh"
root=$IMAGES/rootfs-bookworm
[ -d "$root/usr/bin" ] || bash "$repo/cluster/build-images.sh"
mk() { python3 "$repo/cluster/images/mkimage.py" "$@" >/dev/null; }
work=$(mktemp -d); trap 'umount -R "$work/merged" 2>/dev/null || true; rm -rf "$work"' EXIT

# venv_layer NAME REQUIREMENTS... : a cached layer holding /opt/venv with REQUIREMENTS installed,
# made with pip inside the base rootfs (an overlay mount, so the layer is exactly the upper dir).
venv_layer() {
  local name=$1; shift
  local key; key=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
  local layer=$IMAGES/layers/$name-$key
  if [ ! -d "$layer" ]; then
    log "installing $name dependencies into a layer (pip, once per change)"
    mkdir -p "$work/upper" "$work/ovl" "$work/merged"
    mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/ovl" "$work/merged"
    mount --bind /dev "$work/merged/dev"; mount -t proc proc "$work/merged/proc"
    mount --bind /etc/resolv.conf "$work/merged/etc/resolv.conf"
    # pip reaches PyPI only through this machine's CA bundle.
    mount --bind /etc/ssl/certs/ca-certificates.crt "$work/merged/etc/ssl/certs/ca-certificates.crt"
    env -i PATH=/usr/bin:/bin HOME=/root PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
      "$(command -v chroot)" "$work/merged" sh -c 'python3 -m venv /opt/venv && /opt/venv/bin/pip install -q "$@"' pip "$@"
    umount -R "$work/merged"
    find "$work/upper" -name __pycache__ -path '*/usr/lib/*' -prune -exec rm -rf {} + 2>/dev/null || true
    rm -rf "$work/upper/root" "$work/upper/tmp"
    mkdir -p "$(dirname "$layer")"; mv "$work/upper" "$layer"; rm -rf "$work/ovl" "$work/merged"
  fi
  echo "$layer"
}

# The operator image: dependencies from pyproject.toml, then the package itself.
mapfile -t deps < <(python3 -c 'import tomllib,sys; print("\n".join(tomllib.load(open(sys.argv[1],"rb"))["project"]["dependencies"]))' "$repo/pyproject.toml")
deps_layer=$(venv_layer operator-deps "${deps[@]}")
code=$work/operator-code; mkdir -p "$code/opt/app" "$code/usr/local/bin"
cp -r "$repo/operator/mmif_operator" "$code/opt/app/"
find "$code" -name __pycache__ -prune -exec rm -rf {} +
printf '#!/bin/sh\nexec /opt/venv/bin/python -m mmif_operator.main "$@"\n' > "$code/usr/local/bin/mmif-operator"
printf '#!/bin/sh\nexec /opt/venv/bin/python -m mmif_operator.runner.cli "$@"\n' > "$code/usr/local/bin/mmif-runner"
chmod 0755 "$code"/usr/local/bin/*; chmod -R a+rX "$code"
log "building mmif.local/mmif-operator:dev"
mk --tag mmif.local/mmif-operator:dev --out "$IMAGES/mmif-operator-dev.tar" --base "$IMAGES/debian-python-bookworm.tar" \
  --layer-dir "$deps_layer" --code-dir "$code" --env PYTHONPATH=/opt/app --env PYTHONUNBUFFERED=1 \
  --env PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin --user 65532:65532 --workdir /opt/app \
  --entrypoint '["/usr/local/bin/mmif-operator"]'
archives=("$IMAGES/mmif-operator-dev.tar")

# The test apps: one image per app folder, sharing the clams-python layer.
if [ -f "$repo/tests/apps/requirements.txt" ]; then
  mapfile -t app_reqs < <(grep -vE '^\s*(#|$)' "$repo/tests/apps/requirements.txt")
  apps_layer=$(venv_layer clams-apps "${app_reqs[@]}")
  appcode=$work/apps-code; mkdir -p "$appcode/apps"
  for d in "$repo"/tests/apps/*/; do [ -f "$d/app.py" ] && cp -r "$d" "$appcode/apps/"; done
  find "$appcode" -name __pycache__ -prune -exec rm -rf {} +; chmod -R a+rX "$appcode"
  for d in "$appcode"/apps/*/; do
    app=$(basename "$d")
    log "building mmif.local/clams-$app:dev"
    mk --tag "mmif.local/clams-$app:dev" --out "$IMAGES/clams-$app-dev.tar" --base "$IMAGES/debian-python-bookworm.tar" \
      --layer-dir "$apps_layer" --code-dir "$appcode" --env PYTHONUNBUFFERED=1 --env PATH=/opt/venv/bin:/usr/bin:/bin \
      --workdir "/apps/$app" --entrypoint "[\"/opt/venv/bin/python\", \"/apps/$app/app.py\", \"--port\", \"5000\", \"--production\"]"
    archives+=("$IMAGES/clams-$app-dev.tar")
  done
fi

[ "${1:-}" = --no-load ] || bash "$repo/cluster/load-images.sh" "${archives[@]}"
