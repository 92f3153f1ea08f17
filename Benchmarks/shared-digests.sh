#!/usr/bin/env bash
# Composefs layout when files share content (issue 17's review): one fs-verity digest on
# several stubs makes their metacopy and redirect xattrs shared ones, which the layout counts
# and sorts. Three deterministic shapes, each built as composefs by this ovlcfs (and by
# BEFORE=path, side by side), reporting the layout phase and checking the images are equal:
#
#   pairs   200,000 stubs, 100,000 digests on two stubs each, no xattrs of their own
#   label   the same, each stub with user.foo=bar
#   wide    10,000 stubs, 5,000 digests on two stubs each, 400 user.kNNN xattrs each
#
#   Benchmarks/shared-digests.sh [WORK]          BEFORE=/path/to/old/ovlcfs ROUNDS=3 …
set -euo pipefail
work=${1:-/var/tmp/ovlcfs-shared-digests}
rounds=${ROUNDS:-3}
ovlcfs=${OVLCFS:-$(dirname "$0")/../.build/release/ovlcfs}
before=${BEFORE:-}
[ -x "$ovlcfs" ] || { echo "shared-digests: no $ovlcfs (swift build -c release)" >&2; exit 1; }
mkdir -p "$work"
python3 - "$work" <<'PY'
import hashlib, os, sys
work = sys.argv[1]
def digest(i): return hashlib.sha256(b"%d" % i).hexdigest()
def write(name, stubs, per_digest, xattrs):
    path = os.path.join(work, name + ".dump")
    if os.path.exists(path): return
    with open(path + ".tmp", "w") as out:
        out.write("/ 4096 40755 2 0 0 0 0.0 - - -\n")
        for i in range(stubs):
            d = digest(i // per_digest)
            out.write("/f%07d 100 100644 1 0 0 0 0.0 %s/%s - %s%s\n" % (i, d[:2], d[2:], d, xattrs))
    os.rename(path + ".tmp", path)
write("pairs", 200000, 2, "")
write("label", 200000, 2, " user.foo=bar")
write("wide", 10000, 2, "".join(" user.k%03d=v" % k for k in range(400)))
PY
for shape in pairs label wide; do
    for binary in ${before:+"$before"} "$ovlcfs"; do
        times=()
        for _ in $(seq "$rounds"); do
            out=$work/$shape.$(basename "$binary").cfs
            times+=("$("$binary" build "$work/$shape.dump" -o "$out" --format composefs --quiet --json |
                python3 -c 'import json, sys; print(json.load(sys.stdin)["phases"]["layout"])')")
        done
        median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((rounds + 1) / 2))p")
        printf '%-6s %-24s layout median %.3f s (%s rounds)\n' "$shape" "$(basename "$binary")" "$median" "$rounds"
    done
    if [ -n "$before" ]; then
        cmp -s "$work/$shape.$(basename "$before").cfs" "$work/$shape.$(basename "$ovlcfs").cfs" &&
            echo "$shape: byte-identical" || { echo "$shape: IMAGES DIFFER" >&2; exit 1; }
    fi
done
