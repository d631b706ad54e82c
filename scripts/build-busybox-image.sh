#!/usr/bin/env bash
# Builds a small OCI image archive (busybox, from the distribution's static busybox) for
# tests and demos:   scripts/build-busybox-image.sh [OUT.tar]   (default: busybox-oci.tar)
# Then:              rkind load image busybox-oci.tar
# Installs busybox-static with apt-get when it is missing.
set -euo pipefail
out="${1:-busybox-oci.tar}"
if [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "busybox-static is not installed and installing it needs root" >&2
    exit 1
  fi
  (apt-get install -y -q busybox-static >/dev/null 2>&1) || {
    apt-get update -q >/dev/null
    apt-get install -y -q busybox-static >/dev/null
  }
fi
python3 - "$out" <<'PY'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, time

out = sys.argv[1]
applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()

def add_dir(tar, name, mode=0o755):
    ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = mode; ti.mtime = 0
    tar.addfile(ti)

layer_buf = io.BytesIO()
with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"]:
        add_dir(tar, d, 0o1777 if d == "tmp" else 0o755)
    data = open("/bin/busybox", "rb").read()
    ti = tarfile.TarInfo("bin/busybox"); ti.size = len(data); ti.mode = 0o755; ti.mtime = 0
    tar.addfile(ti, io.BytesIO(data))
    for a in applets:
        if a == "busybox":
            continue
        ti = tarfile.TarInfo(f"bin/{a}"); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"; ti.mtime = 0
        tar.addfile(ti)
    for name, text in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
                       ("etc/group", "root:x:0:\nnobody:x:65534:\n")]:
        b = text.encode(); ti = tarfile.TarInfo(name); ti.size = len(b); ti.mode = 0o644; ti.mtime = 0
        tar.addfile(ti, io.BytesIO(b))
layer_tar = layer_buf.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
layer_gz = gzip.compress(layer_tar, mtime=0)
layer_digest = hashlib.sha256(layer_gz).hexdigest()

config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
}, separators=(",", ":")).encode()
config_digest = hashlib.sha256(config).hexdigest()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + config_digest, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + layer_digest, "size": len(layer_gz)}],
}, separators=(",", ":")).encode()
manifest_digest = hashlib.sha256(manifest).hexdigest()
index = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + manifest_digest,
                   "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/busybox:latest"}}],
}, separators=(",", ":")).encode()

with tarfile.open(out, "w") as tar:
    def add(name, b):
        ti = tarfile.TarInfo(name); ti.size = len(b); ti.mode = 0o644; ti.mtime = int(time.time())
        tar.addfile(ti, io.BytesIO(b))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    add(f"blobs/sha256/{config_digest}", config)
    add(f"blobs/sha256/{manifest_digest}", manifest)
    add(f"blobs/sha256/{layer_digest}", layer_gz)
print(f"wrote {out}: docker.io/library/busybox:latest sha256:{config_digest}")
PY
