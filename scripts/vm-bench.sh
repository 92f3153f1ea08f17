#!/bin/bash
# The A/B with integrity on (issue 18): composefs with fs-verity against the overlay option on
# dm-verity, in Debian's 6.12 kernel under QEMU (../shared/tools/kernel-vm), where this host's
# kernel has neither device-mapper nor fs-verity.
#
#   scripts/vm-bench.sh [OVLCFS_BINARY] [MODEL] [bench options…] [--json F] [--markdown F] [--svg F]
#
# The guest gets an ext4 work disk made with the verity feature; `ovlcfs bench` runs there
# with the arms composefs-verity (the .cfs with fs-verity, its digest pinned, objects checked
# with verity=require), overlay-disk-lz4 (the GPT disk through dm-verity, objects checked) and
# the unverified composefs and overlay-data-only-lz4 for reference (--arms changes them). The
# objects are sparse stand-ins named by their own fs-verity digests, fs-verity enabled on each.
# --json/--markdown/--svg are paths on the host; the report comes back there. Default MODEL:
# Examples/cs9-x86_64-minimal.dump.gz. Times are QEMU TCG's: read the ratios and the block
# device read counts (exact), not the seconds. Nothing is left on the host.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KVM=${KVM_TOOLS:-$HERE/../../shared/tools/kernel-vm}

if [ -z "${VMTEST:-}" ]; then
  set -e
  BIN=$HERE/../.build/release/ovlcfs
  # An executable ELF file first is the binary to run.
  if [ $# -gt 0 ] && [ -f "$1" ] && [ -x "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    BIN=$1; shift
  fi
  BIN=$(realpath "$BIN")
  MODEL=$(realpath "$HERE/../Examples/cs9-x86_64-minimal.dump.gz")
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    case "$1" in synthetic:* | oci:* | oci-archive:* | docker-archive:* | tar:*) MODEL=$1 ;; *) MODEL=$(realpath "$1") ;; esac
    shift
  fi
  json="" markdown="" svg="" args=() has_arms=false has_note=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --json) json=$2; shift 2 ;;
      --json=*) json=${1#--json=}; shift ;;
      --markdown) markdown=$2; shift 2 ;;
      --markdown=*) markdown=${1#--markdown=}; shift ;;
      --svg) svg=$2; shift 2 ;;
      --svg=*) svg=${1#--svg=}; shift ;;
      --work-dir | --work-dir=* | --state-directory | --state-directory=*)
        echo "vm-bench: ${1%%=*} is chosen inside the VM" >&2; exit 2 ;;
      --arms | --arms=*) has_arms=true; args+=("$1"); shift ;;
      --note | --note=*) has_note=true; args+=("$1"); shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  $has_arms || args+=(--arms composefs,composefs-verity,overlay-data-only-lz4,overlay-disk-lz4)
  $has_note || args+=(--note "Measured under QEMU TCG (software emulation, Debian kernel 6.12): compare ratios and block-device read counts, not seconds.")
  [ -x "$KVM/vmrun.sh" ] || { echo "vm-bench: $KVM/vmrun.sh is missing (../shared/tools/kernel-vm)" >&2; exit 2; }
  OUT=$(mktemp -d /tmp/ovlcfs-vmbench.XXXXXX)
  # The work disk: sparse, ext4 with 4 KiB blocks and the verity feature (fs-verity needs both).
  truncate -s 16G "$OUT/work.img"
  mkfs.ext4 -q -F -O verity -b 4096 "$OUT/work.img"
  printf '%s\n' "$BIN" > "$OUT/bin"
  printf '%s\n' "$MODEL" > "$OUT/model"
  printf '%s\0' "${args[@]}" > "$OUT/args"
  rc=0
  "$KVM/vmrun.sh" -o "$OUT" -m "${VMBENCH_MEMORY_MB:-4096}" -c 2 -d "$OUT/work.img" \
    -t "${VMBENCH_TIMEOUT:-1500}" -- "$HERE/vm-bench.sh" >&2 || rc=$?
  [ -n "$json" ] && [ -f "$OUT/r.json" ] && cp "$OUT/r.json" "$json"
  [ -n "$markdown" ] && [ -f "$OUT/r.md" ] && cp "$OUT/r.md" "$markdown"
  [ -n "$svg" ] && [ -f "$OUT/r.svg" ] && cp "$OUT/r.svg" "$svg"
  [ -f "$OUT/r.txt" ] && cat "$OUT/r.txt"
  if [ "$rc" -eq 0 ]; then
    rm -rf "$OUT"
  else
    rm -f "$OUT/work.img"
    echo "vm-bench: failed ($rc); the guest's console is in $OUT/console.log" >&2
  fi
  exit $rc
fi

# ---------------- guest side ----------------------------------------------
set -e
BIN=$(cat "$VMTEST_OUT/bin")
MODEL=$(cat "$VMTEST_OUT/model")
mapfile -d '' ARGS < "$VMTEST_OUT/args"
# (not under /work or any host path: the guest sees the host's tree, BIN and MODEL included)
WORK=$(mktemp -d /run/vmbench.XXXXXX)
mount /dev/vda "$WORK"
trap 'umount "$WORK"' EXIT
echo "# guest: kernel $(uname -r); bench $MODEL ${ARGS[*]}" >&2
"$BIN" bench "$MODEL" --work-dir "$WORK/bench" --state-directory /run/ovlcfs "${ARGS[@]}" \
  --json "$VMTEST_OUT/r.json" --markdown "$VMTEST_OUT/r.md" --svg "$VMTEST_OUT/r.svg" > "$VMTEST_OUT/r.txt"
