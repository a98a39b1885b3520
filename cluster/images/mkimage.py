#!/usr/bin/env python3
"""Write a container image as a docker-archive tarball, without a registry or a daemon.

The archive (the format `docker save` writes and `ctr images import` reads) holds the layers of
an optional base archive plus new layers made from directories or single files, and an image
config. Used by build-images.sh; standard library only, so it runs before any venv exists.

  mkimage.py --tag NAME:TAG --out OUT.tar [--base BASE.tar] [--layer-dir DIR]...
             [--code-dir DIR]... [--file SRC:DEST[:MODE]]... [--entrypoint JSON] [--cmd JSON] [--env K=V]...
             [--user USER] [--workdir DIR] [--label K=V]...
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def overlay_whiteouts_to_oci(root: str) -> None:
    """Turn overlayfs whiteouts (0:0 character devices) into `.wh.` files, as image layers want."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                os.unlink(p)
                open(os.path.join(dirpath, ".wh." + name), "w").close()


def layer_from_dir(src: str, workdir: str, reproducible: bool = False) -> str:
    """A layer of everything under `src`. `reproducible` zeroes owners and times, so that the
    same files give the same layer digest (and an unchanged image is not imported again)."""
    overlay_whiteouts_to_oci(src)
    out = os.path.join(workdir, f"layer-{len(os.listdir(workdir))}.tar")
    flags = ["--format=gnu", "--owner=0", "--group=0", "--mtime=@0"] if reproducible else ["--xattrs"]
    subprocess.run(["tar", "--numeric-owner", "--sort=name", *flags, "-C", src, "-cf", out, "."], check=True)
    return out


def layer_from_files(files: list[str], workdir: str) -> str:
    out = os.path.join(workdir, f"layer-{len(os.listdir(workdir))}.tar")
    with tarfile.open(out, "w") as tar:
        for spec in files:
            parts = spec.split(":")
            src, dest = parts[0], parts[1].lstrip("/")
            info = tar.gettarinfo(src, arcname=dest)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if len(parts) > 2:
                info.mode = int(parts[2], 8)
            with open(src, "rb") as f:
                tar.addfile(info, f)
    return out


def read_base(path: str, workdir: str) -> tuple[list[str], dict]:
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
        layers = []
        for name in manifest["Layers"]:
            out = os.path.join(workdir, f"base-{len(layers)}.tar")
            with tar.extractfile(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            layers.append(out)
    return layers, config


def kv(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--base")
    ap.add_argument("--layer-dir", action="append", default=[])
    ap.add_argument(
        "--code-dir", action="append", default=[], help="a layer from a directory, reproducibly (no times)"
    )
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--entrypoint")
    ap.add_argument("--cmd")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--user")
    ap.add_argument("--workdir")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.out))) as tmp:
        layerdir = os.path.join(tmp, "layers")
        os.mkdir(layerdir)
        if args.base:
            layers, config = read_base(args.base, layerdir)
        else:
            layers, config = (
                [],
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                },
            )
        for d in args.layer_dir:
            layers.append(layer_from_dir(d, layerdir))
        for d in args.code_dir:
            layers.append(layer_from_dir(d, layerdir, reproducible=True))
        if args.file:
            layers.append(layer_from_files(args.file, layerdir))

        cfg = config.setdefault("config", {})
        if args.entrypoint is not None:
            cfg["Entrypoint"] = json.loads(args.entrypoint)
            cfg.pop("Cmd", None)
        if args.cmd is not None:
            cfg["Cmd"] = json.loads(args.cmd)
        if args.env:
            env = kv(cfg.get("Env") or [])
            env.update(kv(args.env))
            cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
        if args.label:
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **kv(args.label)}
        if args.user is not None:
            cfg["User"] = args.user
        if args.workdir is not None:
            cfg["WorkingDir"] = args.workdir

        digests = [sha256_file(p) for p in layers]
        config["rootfs"] = {"type": "layers", "diff_ids": ["sha256:" + d for d in digests]}
        config["history"] = [{"created_by": "mmif-operator cluster/images/mkimage.py"} for _ in layers]
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [
            {"Config": config_name, "RepoTags": [args.tag], "Layers": [f"{d}/layer.tar" for d in digests]}
        ]

        partial = args.out + ".partial"
        with tarfile.open(partial, "w") as tar:

            def add_bytes(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

            for path, digest in zip(layers, digests, strict=True):
                tar.add(path, arcname=f"{digest}/layer.tar")
            add_bytes(config_name, config_bytes)
            add_bytes("manifest.json", json.dumps(manifest).encode())
            add_bytes(
                "repositories",
                json.dumps({args.tag.rsplit(":", 1)[0]: {args.tag.rsplit(":", 1)[1]: digests[-1]}}).encode(),
            )
        os.replace(partial, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
