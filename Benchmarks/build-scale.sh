#!/usr/bin/env bash
# Builds at scale (issue 17): the whole `ovlcfs build` command on a realistic model of
# ENTRIES entries (default 1,000,000), both image kinds, against mkcomposefs where it is
# installed, with the page cache warm.
#
#   Benchmarks/build-scale.sh [ENTRIES] [WORK]
#
# The model is `synthetic:ENTRIES` (deterministic, seeded: directories of 1–300 entries,
# ~10 % symlinks, ~80 % regular files with fs-verity digests and log-normal sizes, every entry
# labelled security.selinux), written once as WORK/model-ENTRIES.dump. Each command runs ROUNDS
# times (default 3), alternating; reported per command: median wall time, CPU time (user+sys),
# cores used (CPU/wall), peak RSS and bytes of RSS per entry. Also checks that two builds of
# each kind are byte-identical.
set -euo pipefail
entries=${1:-1000000}
work=${2:-/var/tmp/ovlcfs-scale}
rounds=${ROUNDS:-3}
ovlcfs=${OVLCFS:-$(dirname "$0")/../.build/release/ovlcfs}
command -v /usr/bin/time >/dev/null || { echo "build-scale: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[ -x "$ovlcfs" ] || { echo "build-scale: no $ovlcfs (swift build -c release)" >&2; exit 1; }
mkdir -p "$work"
model=$work/model-$entries.dump
if [ ! -f "$model" ]; then
    echo "build-scale: writing synthetic:$entries to $model (once)" >&2
    "$ovlcfs" inspect "synthetic:$entries" --dump -o "$model"
fi
cat "$model" >/dev/null  # warm
declare -A commands=(
    [inspect]="$ovlcfs inspect $model"
    [build-squashfs]="$ovlcfs build $model -o $work/out.sqfs --quiet"
    [build-composefs]="$ovlcfs build $model -o $work/out.cfs --format composefs --quiet"
)
if command -v mkcomposefs >/dev/null; then
    commands[mkcomposefs]="mkcomposefs --from-file $model $work/mk.cfs"
else
    echo "build-scale: mkcomposefs is not installed here; its column is left out" >&2
fi
names=(inspect build-squashfs build-composefs)
[ -n "${commands[mkcomposefs]:-}" ] && names+=(mkcomposefs)
declare -A wall cpu rss
for round in $(seq 1 "$rounds"); do
    for name in "${names[@]}"; do
        /usr/bin/time -o "$work/time.txt" -f '%e %U %S %M' ${commands[$name]} >/dev/null 2>&1
        read -r e u s m <"$work/time.txt"
        wall[$name]+="$e "
        cpu[$name]+="$(echo "$u + $s" | bc) "
        rss[$name]+="$m "
        echo "round $round $name: ${e} s, $(echo "$u + $s" | bc) s CPU, $((m / 1024)) MiB" >&2
    done
    [ "$round" = 1 ] && { cp "$work/out.sqfs" "$work/first.sqfs"; cp "$work/out.cfs" "$work/first.cfs"; }
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '\n| command (%s entries) | wall (median) | CPU user+sys | cores | peak RSS | RSS bytes/entry |\n|---|---:|---:|---:|---:|---:|\n' "$entries"
for name in "${names[@]}"; do
    w=$(echo "${wall[$name]}" | median); c=$(echo "${cpu[$name]}" | median); m=$(echo "${rss[$name]}" | median)
    printf '| %s | %.2f s | %.2f s | %.2f | %d MiB | %d |\n' "$name" "$w" "$c" "$(echo "$c / $w" | bc -l)" \
        "$((${m%.*} / 1024))" "$(( ${m%.*} * 1024 / entries ))"
done
cmp -s "$work/first.sqfs" "$work/out.sqfs" && echo "squashfs: byte-identical across builds" || echo "squashfs: DIFFERENT across builds"
cmp -s "$work/first.cfs" "$work/out.cfs" && echo "composefs: byte-identical across builds" || echo "composefs: DIFFERENT across builds"
