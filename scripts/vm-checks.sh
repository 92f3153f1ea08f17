#!/bin/bash
# Real-kernel checks of what this machine's kernel cannot do: dm-verity activation of
# `ovlcfs build --disk` images and overlay verity=require against fs-verity objects.
# Boots Debian's 6.12 kernel under QEMU with ../shared/tools/kernel-vm (a test-only tool).
#   On the host:   scripts/vm-checks.sh [OVLCFS_BINARY]  -> builds the images, boots the VM
#   In the guest:  (VMTEST=1) runs the checks, prints "N passed, N failed", exits non-zero on failure
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KVM=${KVM_TOOLS:-$HERE/../../shared/tools/kernel-vm}

if [ -z "${VMTEST:-}" ]; then
  set -e
  BIN=$(realpath "${1:-$HERE/../.build/debug/ovlcfs}")
  OUT=$(mktemp -d /tmp/ovlcfs-vm.XXXXXX); I=$OUT/img; mkdir -p "$I"
  trap 'rm -rf "$OUT"' EXIT
  P=$I/payload; mkdir -p "$P/sub/deeper"
  seq 1 20000 > "$P/sub/numbers.txt"
  head -c 300000 /dev/urandom > "$P/big.bin"
  echo "a file of more than sixty-four bytes, so that it becomes an object in the store" > "$P/hello.txt"
  echo small > "$P/sub/deeper/inline"
  ln -s ../hello.txt "$P/sub/link"
  "$BIN" build "$P" -o "$I/disk.raw" --disk --objects "$I/objects" >"$I/build.txt"
  "$BIN" build "$P" -o "$I/plain.sqfs" --objects "$I/objects" >/dev/null 2>&1
  "$BIN" build "$P" -o "$I/image.cfs" --format composefs --objects "$I/objects" >/dev/null 2>&1
  cp "$I/disk.raw" "$I/bad.raw"
  # the data partition starts at LBA 2048: flip the first byte of the squashfs superblock
  printf '\x00' | dd of="$I/bad.raw" bs=1 seek=$((2048 * 512)) conv=notrunc status=none
  mkfs.ext4 -q -F -O verity -b 4096 -d "$I/objects" "$I/objects.img" 64M
  # composefs images on an fs-verity filesystem: the image, and a copy with one byte flipped
  # (in its superblock's padding: still a valid image, another digest)
  mkdir -p "$I/images"
  cp "$I/image.cfs" "$I/images/image.cfs"; cp "$I/image.cfs" "$I/images/bad.cfs"
  printf '\x01' | dd of="$I/images/bad.cfs" bs=1 seek=$((1024 + 120)) conv=notrunc status=none
  mkfs.ext4 -q -F -O verity -b 4096 -d "$I/images" "$I/images.img" 16M
  echo "$BIN" > "$I/bin"
  "$KVM/vmrun.sh" -o "$OUT" -t "${VMTEST_TIMEOUT:-600}" -- "$HERE/vm-checks.sh"
  exit $?
fi

# ---------------- guest side ----------------------------------------------
I=$VMTEST_OUT/img; P=$I/payload; BIN=$(cat "$I/bin")
PASS=0; FAIL=0; N=0
ok()  { N=$((N+1)); PASS=$((PASS+1)); echo "ok $N - $*"; }
nok() { N=$((N+1)); FAIL=$((FAIL+1)); echo "not ok $N - $*"; }
check() { local d=$1; shift; if "$@" >/tmp/check.log 2>&1; then ok "$d"; else nok "$d"; sed 's/^/#   /' /tmp/check.log | tail -15; fi; }
checkfail() { local d=$1; shift; if "$@" >/tmp/check.log 2>&1; then nok "$d (unexpectedly succeeded)"; else ok "$d"; sed 's/^/#   /' /tmp/check.log | tail -3; fi; }
echo "# guest: kernel $(uname -r)"
mkdir -p /tmp/mnt/objects /tmp/mnt/root

check "objects on ext4 (-O verity), mounted through a loop device" mount -t ext4 -o loop "$I/objects.img" /tmp/mnt/objects
check "fsverity enable every object" sh -c 'find /tmp/mnt/objects -type f -path "*/??/*" -exec fsverity enable {} \;'

check "ovlcfs mount --verity require: dm-verity disk + verity=require overlay" \
  "$BIN" mount "$I/disk.raw" /tmp/mnt/root --objects /tmp/mnt/objects --verity require
check "the squashfs sits on a dm-verity mapping" sh -c 'dmsetup table | grep -q " verity "'
check "the overlay is mounted with verity=require" sh -c 'grep " /tmp/mnt/root " /proc/mounts | grep -q verity=require'
check "the mounted tree is the payload (contents, links, inline files)" diff -r "$P" /tmp/mnt/root
check "ovlcfs status lists the mount with its dm-verity device" sh -c "'$BIN' status | grep -q /tmp/mnt/root"
check "ovlcfs umount" "$BIN" umount /tmp/mnt/root
check "the dm-verity mapping went with the mount" sh -c '[ -z "$(dmsetup ls | grep ovlcfs)" ]'
check "no ovlcfs loop device is left" sh -c '! losetup -a | grep -q disk.raw'

checkfail "a tampered data partition is refused by dm-verity" \
  "$BIN" mount "$I/bad.raw" /tmp/mnt/root --objects /tmp/mnt/objects --verity require
check "the refused mount left no mapping and no loop" sh -c '[ -z "$(dmsetup ls | grep ovlcfs)" ] && ! losetup -a | grep -q bad.raw'
check "a wrong --root-hash is refused, with the dm-verity hint" \
  sh -c "! '$BIN' mount '$I/disk.raw' /tmp/mnt/root --objects /tmp/mnt/objects --root-hash $(printf '0%.0s' $(seq 64)) 2>/tmp/err; cat /tmp/err; grep -q 'dm-verity refused' /tmp/err"
check "the refused mount left no mapping" sh -c '[ -z "$(dmsetup ls | grep ovlcfs)" ]'

# the other two image kinds on this kernel (before 6.15: the lower mount goes through a staging directory)
for image in plain.sqfs image.cfs; do
  check "ovlcfs mount $image --verity require" "$BIN" mount "$I/$image" /tmp/mnt/root --objects /tmp/mnt/objects --verity require
  check "$image: the mounted tree is the payload" diff -r "$P" /tmp/mnt/root
  check "$image: ovlcfs umount leaves no mount, loop or staging directory" \
    sh -c "'$BIN' umount /tmp/mnt/root && ! grep -q /tmp/mnt/root /proc/mounts && ! losetup -a | grep -q '$image' && [ -z \"\$(ls -A /run/ovlcfs/staging 2>/dev/null)\" ]"
done

# an object whose content changed behind the overlay's back: verity=require refuses to read it
OBJ=$(find /tmp/mnt/objects -type f -size +200k -path "*/??/*" | head -1)
check "ovlcfs mount again" "$BIN" mount "$I/disk.raw" /tmp/mnt/root --objects /tmp/mnt/objects --verity require
check "big.bin reads back through the overlay" cmp "$P/big.bin" /tmp/mnt/root/big.bin
check "ovlcfs umount" "$BIN" umount /tmp/mnt/root
check "replace big.bin's object with a copy that has no fs-verity" sh -c "cp '$OBJ' /tmp/o && head -c 300000 /dev/zero > /tmp/z && rm '$OBJ' && cp /tmp/z '$OBJ'"
check "ovlcfs mount (objects no longer all verity)" "$BIN" mount "$I/disk.raw" /tmp/mnt/root --objects /tmp/mnt/objects --verity require
checkfail "reading big.bin is refused: its object has no fs-verity (verity=require)" cat /tmp/mnt/root/big.bin
check "enable fs-verity on the substituted object (now a wrong digest)" fsverity enable "$OBJ"
checkfail "reading big.bin is refused: the object's fs-verity digest is not the image's" cat /tmp/mnt/root/big.bin
check "the kernel logged the digest mismatch" sh -c 'dmesg | grep -q "overlayfs: .*wrong fs-verity digest"'
check "ovlcfs umount" "$BIN" umount /tmp/mnt/root

# composefs with fs-verity (the bench's composefs-verity arm): the image's digest pinned, objects checked
mkdir -p /tmp/mnt/images
check "composefs images on ext4 (-O verity)" mount -t ext4 -o loop "$I/images.img" /tmp/mnt/images
check "fsverity enable both images" sh -c 'fsverity enable /tmp/mnt/images/image.cfs && fsverity enable /tmp/mnt/images/bad.cfs'
CFSD=$(fsverity measure /tmp/mnt/images/image.cfs | cut -d' ' -f1 | cut -d: -f2)
checkfail "a composefs image one byte off its pinned digest is refused (kernel fs-verity measurement)" \
  "$BIN" mount /tmp/mnt/images/bad.cfs /tmp/mnt/root --objects /tmp/mnt/objects --digest "$CFSD" --verity require
check "the refused image left no mount" sh -c '! grep -q " /tmp/mnt/root " /proc/mounts'
check "the image mounts with its digest pinned and verity=require" \
  "$BIN" mount /tmp/mnt/images/image.cfs /tmp/mnt/root --objects /tmp/mnt/objects --digest "$CFSD" --verity require
checkfail "composefs-verity: reading big.bin is refused (its object's digest is wrong)" cat /tmp/mnt/root/big.bin
check "composefs-verity: a file with a good object still reads" cmp "$P/sub/numbers.txt" /tmp/mnt/root/sub/numbers.txt
check "ovlcfs umount" "$BIN" umount /tmp/mnt/root
umount /tmp/mnt/images
# (made as ovlcfs makes them: veritysetup over loops of the disk's two partitions, at LBA 2048 and 4096)
DLOOP=$(losetup -f --show -r -o $((2048 * 512)) --sizelimit 4096 "$I/disk.raw")
HLOOP=$(losetup -f --show -r -o $((4096 * 512)) --sizelimit 4096 "$I/disk.raw")
ROOT=$(grep -o '[0-9a-f]\{64\}' "$I/build.txt" | head -1)
check "a dm-verity mapping orphaned by a killed mount (its pid gone) ..." \
  sh -c "veritysetup open $DLOOP ovlcfs-999999-1 $HLOOP $ROOT && dmsetup ls | grep -q ovlcfs-999999-1"
check "... is removed by ovlcfs umount --all" sh -c "'$BIN' umount --all && [ -z \"\$(dmsetup ls | grep ovlcfs)\" ]"
losetup -d "$DLOOP" "$HLOOP"
umount /tmp/mnt/objects
check "nothing of ovlcfs is left (mounts, mappings, loops)" \
  sh -c '! grep -q /tmp/mnt /proc/mounts && [ -z "$(dmsetup ls | grep ovlcfs)" ] && [ -z "$(losetup -a)" ]'
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
