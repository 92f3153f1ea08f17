#!/usr/bin/env bash
# Importing an OCI image into an objects store: `ovlcfs build oci:…` (streamed, nothing
# unpacked) against `umoci unpack` followed by `ovlcfs build DIR --objects` of the result, side
# by side, alternating, on the same image (issue 14).
#
#   Benchmarks/oci-import.sh [SOURCE] [WORK]      (as root; SOURCE defaults to /usr)
#
# Builds WORK/img (an OCI layout with one gzip layer of SOURCE, made by GNU tar) once,
# then runs both arms ROUNDS times (default 2) with the page cache warm, each into a fresh store.
# Reports per arm: median wall time, CPU time (user+sys) and cores used (CPU/wall), peak
# memory (max RSS of any process of the arm), and uncompressed layer bytes per second; and
# checks that both arms produced the same model (directory sizes aside).
set -euo pipefail
source_dir=${1:-/usr}
work=${2:-/var/tmp/ovlcfs-oci-bench}
rounds=${ROUNDS:-2}
ovlcfs=${OVLCFS:-$(dirname "$0")/../.build/release/ovlcfs}
for tool in umoci tar python3 /usr/bin/time "$ovlcfs"; do
    command -v "$tool" >/dev/null || { echo "oci-import: needs $tool (apt-get install umoci time; swift build -c release)" >&2; exit 1; }
done
mkdir -p "$work"
if [ ! -f "$work/img/index.json" ]; then
    # GNU tar (PAX, xattrs) and gzip: umoci 0.4.7's own `insert` writes layers without the
    # tar trailer (GNU tar and bsdtar call them truncated; ovlcfs refuses them too).
    echo "oci-import: making an OCI image of $source_dir with GNU tar and ${gz:=$(command -v pigz || echo gzip)} (once)" >&2
    rm -rf "$work/img"
    tar --format=posix --xattrs --xattrs-include='*' --numeric-owner -C "$(dirname "$source_dir")" \
        -cf "$work/layer.tar" "$(basename "$source_dir")"
    "$gz" -c "$work/layer.tar" >"$work/layer.tar.gz"
    python3 - "$work" <<'PY'
import hashlib, json, os, shutil, sys
work = sys.argv[1]
blobs = os.path.join(work, "img", "blobs", "sha256")
os.makedirs(blobs)
def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
layer = digest(work + "/layer.tar.gz")
os.rename(work + "/layer.tar.gz", os.path.join(blobs, layer))
config = put(json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest(work + "/layer.tar")]}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
    "digest": "sha256:" + layer, "size": os.path.getsize(os.path.join(blobs, layer))}]}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": "bench"}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(work + "/img/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(work + "/img/oci-layout", "w"))
PY
    rm -f "$work/layer.tar"
fi
layer_bytes=$(python3 - "$work/img" <<'PY'
import json, sys
layout = sys.argv[1]
m = json.load(open(layout + "/index.json"))["manifests"][0]["digest"][7:]
c = json.load(open(layout + "/blobs/sha256/" + m))["config"]["digest"][7:]
import gzip, hashlib
total = 0
for layer in json.load(open(layout + "/blobs/sha256/" + m))["layers"]:
    with gzip.open(layout + "/blobs/sha256/" + layer["digest"][7:]) as f:
        while chunk := f.read(1 << 20):
            total += len(chunk)
print(total)
PY
)
# Warm the page cache with the image's blobs (both arms read them first).
cat "$work"/img/blobs/sha256/* >/dev/null

measure() { # NAME COMMAND... -> appends "NAME wall cpu maxrss_kib" to $work/results
    local name=$1; shift
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.$name" "$@" >/dev/null 2>"$work/err.$name" || {
        cat "$work/err.$name" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$name $(echo "$end - $start" | bc) $(cat "$work/time.$name")" >>"$work/results"
}
rm -f "$work/results"
for round in $(seq "$rounds"); do
    rm -rf "$work/a" "$work/b"; mkdir -p "$work/a" "$work/b"
    # A: umoci unpack, then ingest the unpacked tree (two processes; peak RSS is the larger).
    measure unpack umoci unpack --image "$work/img:bench" "$work/a/bundle"
    measure ingest "$ovlcfs" build "$work/a/bundle/rootfs" -o "$work/a/image.sqfs" --objects "$work/a/objects" \
        --dump-out "$work/a/model.dump" --quiet
    # B: ovlcfs streaming the image.
    measure import "$ovlcfs" build "oci:$work/img:bench" -o "$work/b/image.sqfs" --objects "$work/b/objects" \
        --dump-out "$work/b/model.dump" --quiet
    sync
done
normalise() { awk '{ if ($3 ~ /^4/) $2 = 0; print }' "$1" | tail -n +2; }
if cmp -s <(normalise "$work/a/model.dump") <(normalise "$work/b/model.dump"); then same=yes; else same=NO; fi
python3 - "$work/results" "$layer_bytes" "$same" "$rounds" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
layer_bytes, same, rounds = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
by = {}
for name, wall, _elapsed, user, sys_, rss in rows:
    by.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss)))
def arm(names):
    walls = [sum(by[n][i][0] for n in names) for i in range(rounds)]
    cpus = [sum(by[n][i][1] for n in names) for i in range(rounds)]
    rss = max(by[n][i][2] for n in names for i in range(rounds))
    return statistics.median(walls), statistics.median(cpus), rss
a, b = arm(["unpack", "ingest"]), arm(["import"])
print(f"image: {layer_bytes / 2**30:.2f} GiB uncompressed; {rounds} rounds, alternating; medians")
print(f"{'arm':38} {'wall s':>8} {'CPU s':>8} {'cores':>6} {'MiB/s':>8} {'peak RSS MiB':>13}")
for label, (wall, cpu, rss) in [("umoci unpack + ovlcfs build DIR", a), ("ovlcfs build oci: (streamed)", b)]:
    print(f"{label:38} {wall:8.2f} {cpu:8.2f} {cpu / wall:6.2f} {layer_bytes / wall / 2**20:8.1f} {rss / 1024:13.1f}")
print(f"speed-up: {a[0] / b[0]:.2f}x; same model: {same}")
PY
