#!/usr/bin/env bash
# Builds at scale (issue 17): the whole `ovlcfs build` command on a realistic model of
# ENTRIES entries (default 1,000,000), both image kinds, with the page cache warm; per phase
# and whole, side by side with another ovlcfs binary (BEFORE=path) and with mkcomposefs where
# it is installed.
#
#   Benchmarks/build-scale.sh [ENTRIES|DUMP] [WORK]
#   BEFORE=/path/to/old/ovlcfs ROUNDS=5 Benchmarks/build-scale.sh
#   BEFORE=… Benchmarks/build-scale.sh Examples/cs9-x86_64-minimal.dump.gz   (the small end)
#
# The model is `synthetic:ENTRIES` (deterministic, seeded: directories of 1–300 entries,
# ~10 % symlinks, ~80 % regular files with fs-verity digests and log-normal sizes, every entry
# labelled security.selinux), written once as WORK/model-ENTRIES.dump. Every command runs
# ROUNDS times (default 3), the commands alternating within a round. Reported per command,
# as medians: wall time, CPU time (user+sys), cores used (CPU/wall), peak RSS and RSS bytes
# per entry, and the phases `build --json` reports (read = parse the dump, translate,
# layout, write). Also checked: each image is byte-identical across rounds, with --jobs 1,
# and (with BEFORE) to the other binary's.
set -euo pipefail
entries=${1:-1000000}
work=${2:-/var/tmp/ovlcfs-scale}
rounds=${ROUNDS:-3}
ovlcfs=${OVLCFS:-$(dirname "$0")/../.build/release/ovlcfs}
before=${BEFORE:-}
command -v /usr/bin/time >/dev/null || { echo "build-scale: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[ -x "$ovlcfs" ] || { echo "build-scale: no $ovlcfs (swift build -c release)" >&2; exit 1; }
[ -z "$before" ] || [ -x "$before" ] || { echo "build-scale: BEFORE=$before is not an executable" >&2; exit 1; }
mkdir -p "$work"
if [ -f "$entries" ]; then
    # A dump given: measure it as it is.
    model=$entries
    entries=$("$ovlcfs" inspect "$model" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"])')
else
    model=$work/model-$entries.dump
    if [ ! -f "$model" ]; then
        echo "build-scale: writing synthetic:$entries to $model (once)" >&2
        "$ovlcfs" inspect "synthetic:$entries" --dump -o "$model"
    fi
fi
cat "$model" >/dev/null  # warm

declare -A commands outputs
names=()
add() { names+=("$1"); commands[$1]=$2; outputs[$1]=$3; }
if [ -n "$before" ]; then
    add before-squashfs "$before build $model -o $work/before.sqfs --quiet --json" "$work/before.sqfs"
fi
add squashfs "$ovlcfs build $model -o $work/out.sqfs --quiet --json" "$work/out.sqfs"
if [ -n "$before" ]; then
    add before-composefs "$before build $model -o $work/before.cfs --format composefs --quiet --json" "$work/before.cfs"
fi
add composefs "$ovlcfs build $model -o $work/out.cfs --format composefs --quiet --json" "$work/out.cfs"
if command -v mkcomposefs >/dev/null; then
    add mkcomposefs "mkcomposefs --from-file $model $work/mk.cfs" "$work/mk.cfs"
else
    echo "build-scale: mkcomposefs is not installed here; its row is left out" >&2
fi

declare -A samples
note() { samples[$1,$2]+="$3 "; }
for round in $(seq 1 "$rounds"); do
    for name in "${names[@]}"; do
        /usr/bin/time -o "$work/time.txt" -f '%e %U %S %M' ${commands[$name]} >"$work/out.json" 2>/dev/null
        read -r e u s m <"$work/time.txt"
        c=$(echo "$u + $s" | bc)
        note "$name" wall "$e"; note "$name" cpu "$c"; note "$name" rss "$m"
        if [ "$name" != mkcomposefs ]; then
            python3 - "$work/out.json" >"$work/phases.txt" <<'EOF'
import json, sys
phases = json.load(open(sys.argv[1])).get("phases", {})
for key in ("read", "translate", "layout", "write"):
    print(key, phases.get(key, ""))
EOF
            while read -r key value; do [ -n "$value" ] && note "$name" "$key" "$value"; done <"$work/phases.txt"
        fi
        [ "$round" = 1 ] && cp "${outputs[$name]}" "${outputs[$name]}.first"
        echo "round $round $name: ${e} s, $c s CPU, $((m / 1024)) MiB" >&2
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print ""; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
cell() { local v; v=$(echo "${samples[$1,$2]:-}" | median); [ -n "$v" ] && printf '%.2f s' "$v" || printf '–'; }
printf '\n%s entries, %s rounds, medians\n\n' "$entries" "$rounds"
printf '| command | read (parse) | translate | layout | write | whole | CPU | cores | peak RSS | RSS B/entry |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for name in "${names[@]}"; do
    w=$(echo "${samples[$name,wall]}" | median); c=$(echo "${samples[$name,cpu]}" | median)
    m=$(echo "${samples[$name,rss]}" | median)
    printf '| %s | %s | %s | %s | %s | %.2f s | %.2f s | %.2f | %d MiB | %d |\n' "$name" \
        "$(cell "$name" read)" "$(cell "$name" translate)" "$(cell "$name" layout)" "$(cell "$name" write)" \
        "$w" "$c" "$(echo "$c / $w" | bc -l)" "$((${m%.*} / 1024))" "$(( ${m%.*} * 1024 / entries ))"
done
echo
same() { cmp -s "$1" "$2" && echo "$3: byte-identical" || echo "$3: DIFFERENT"; }
same "$work/out.sqfs.first" "$work/out.sqfs" "squashfs across rounds"
same "$work/out.cfs.first" "$work/out.cfs" "composefs across rounds"
"$ovlcfs" build "$model" -o "$work/one.sqfs" --jobs 1 --quiet >/dev/null 2>&1
"$ovlcfs" build "$model" -o "$work/one.cfs" --jobs 1 --format composefs --quiet >/dev/null 2>&1
same "$work/one.sqfs" "$work/out.sqfs" "squashfs with --jobs 1 and the default"
same "$work/one.cfs" "$work/out.cfs" "composefs with --jobs 1 and the default"
if [ -n "$before" ]; then
    same "$work/before.sqfs" "$work/out.sqfs" "squashfs, before and after"
    same "$work/before.cfs" "$work/out.cfs" "composefs, before and after"
fi
[ -f "$work/mk.cfs" ] && same "$work/mk.cfs" "$work/out.cfs" "composefs and mkcomposefs"
rm -f "$work"/*.first "$work/one.sqfs" "$work/one.cfs" "$work/time.txt" "$work/out.json" "$work/phases.txt"
