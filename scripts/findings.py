#!/usr/bin/env python3
"""Writes docs/findings.md from the reports scripts/findings measured (docs/findings/*.json).

Every number on the page comes from those reports; the prose around them is fixed, and the
sentences that compare (faster, slower, more, less) are chosen from the numbers.

    python3 scripts/findings.py docs/findings docs/findings.md
"""
import json
import os
import statistics
import sys

OVERLAY = "overlay-data-only-lz4"
RAW = "overlay-data-only-none"
TREE = ["ls-lR", "walk", "stat-random", "getxattr", "read-random", "read-all"]


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def secs(value):
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 0.1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def size(value):
    if abs(value) >= 1 << 30:
        return f"{value / (1 << 30):.2f} GiB"
    if abs(value) >= 1 << 20:
        return f"{value / (1 << 20):.1f} MiB"
    return f"{value / 1024:.0f} KiB"


def result(report, arm, workload, cache):
    for r in report["results"]:
        if r["arm"] == arm and r["workload"] == workload and r["cache"] == cache:
            return r
    return None


def ratio(report, arm, workload, cache):
    for r in report["ratios"]:
        if r["arm"] == arm and r["workload"] == workload and r["cache"] == cache:
            return r
    return None


def ratio_text(report, arm, workload, cache):
    r = ratio(report, arm, workload, cache)
    if r is None:
        return "–"
    return f"{r['ratio']:.2f}× [{r['low']:.2f}–{r['high']:.2f}]"


def med(values):
    return statistics.median(values) if values else float("nan")


def cpu(r):
    text = f"{med(r['userSeconds']):.3f} + {med(r['systemSeconds']):.3f}"
    if r.get("busySeconds"):
        text += f" ({med(r['busySeconds']):.2f})"
    return text


def walk_table(report, label):
    arms = [a for a in (OVERLAY, RAW) if result(report, a, "ls-lR", "cold") or result(report, a, "mount", "cold")]
    lines = [
        f"**{label}** — median of composefs, and each overlay arm's median ÷ composefs's "
        "(95 % bootstrap interval); below 1× the overlay option is faster.",
        "",
        "| workload | cache | composefs | " + " | ".join(arms) + " |",
        "|---|---|---:|" + "---:|" * len(arms),
    ]
    for workload in TREE:
        for cache in ("cold", "warm"):
            base = result(report, "composefs", workload, cache)
            if base is None:
                continue
            cells = [ratio_text(report, a, workload, cache) for a in arms]
            lines.append(f"| {workload} | {cache} | {secs(base['median'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cpu_table(report, label):
    lines = [
        f"**{label}** — CPU seconds per run, median user + system (for ls-lR, the ls process's; "
        "otherwise the benchmark thread's, kernel work in its system calls included); in brackets all CPUs' "
        "busy time during the run (`/proc/stat`), which adds the kernel's workers — loop's backing-file reads "
        "above all — that a thread's own time leaves out.",
        "",
        f"| workload | cache | composefs | {OVERLAY} |",
        "|---|---|---:|---:|",
    ]
    for workload in TREE + ["mount"]:
        for cache in ("cold", "warm"):
            a, b = result(report, "composefs", workload, cache), result(report, OVERLAY, workload, cache)
            if a is None or b is None:
                continue
            lines.append(f"| {workload} | {cache} | {cpu(a)} | {cpu(b)} |")
    return "\n".join(lines) + "\n"


def mount_rows(report, label):
    rows = []
    for cache in ("cold", "warm"):
        base = result(report, "composefs", "mount", cache)
        if base is None:
            continue
        for arm in ("composefs", RAW, OVERLAY, "overlay-legacy-lz4"):
            r = result(report, arm, "mount", cache)
            if r is None:
                continue
            unmount = med(r.get("unmountSamples") or [])
            base_unmount = med(base.get("unmountSamples") or [])
            mratio = "" if arm == "composefs" else f" ({times(r['median'], base['median'])})"
            uratio = "" if arm == "composefs" else f" ({times(unmount, base_unmount)})"
            rows.append(f"| {label} | {cache} | {arm} | {secs(r['median'])}{mratio} | {secs(unmount)}{uratio} |")
    return rows


def density_rows(report, label):
    rows = []
    if not report or not report.get("density"):
        return rows
    base = next((d for d in report["density"] if d["arm"] == "composefs"), None)
    for d in report["density"]:
        k, m = d["kernelObjects"], d["memory"]

        def rel(value, base_value):
            if base is None or d is base or div(value, base_value) is None:
                return ""
            return f" ({times(value, base_value)})"

        rows.append(
            f"| {label} | {d['arm']} | {d['images']} | {secs(med(d['mountSeconds']))} | "
            f"{secs(med(d['walkSeconds']))} | {secs(med(d['umountSeconds']))} | "
            f"{k['mounts']:.0f} + {k['filesystems'] - k['mounts']:.0f} detached | {k['loopDevices']:.0f} | "
            f"{k['dmDevices']:.0f} | {size(m['slabBytes'])}{rel(m['slabBytes'], base and base['memory']['slabBytes'])} | "
            f"{size(m['slabTotalBytes'])}{rel(m['slabTotalBytes'], base and base['memory']['slabTotalBytes'])} | "
            f"{size(m.get('vmallocAndPercpuBytes', 0))} | "
            f"{size(m['pageCacheBytes'])}{rel(m['pageCacheBytes'], base and base['memory']['pageCacheBytes'])} |"
        )
    return rows


def density_of(report, arm):
    if not report:
        return None
    return next((d for d in report.get("density", []) if d["arm"] == arm), None)


def image_rows(report, label):
    rows = []
    base = next((i for i in report["images"] if i["arm"] == "composefs"), None)
    for image in report["images"]:
        rel = "" if image is base or base is None else f" ({times(image['bytes'], base['bytes'])})"
        rows.append(f"| {label} | {image['arm']} | {size(image['bytes'])}{rel} | {secs(image['buildSeconds'])} |")
    return rows


def sweep_section(sweep):
    if not sweep:
        return "No sweep was measured.\n"
    points = sweep["points"]
    lines = [
        "![ratio to composefs against the size of the largest directory](findings/sweep.svg)",
        "",
        f"Synthetic models (`synthetic:ENTRIES:LARGEST_DIR`: directories of 1–300 entries, ~10 % symlinks, "
        f"every entry labelled with `security.selinux`) with the same {points[0]['report']['system']['entries'] - points[0]['value'] - 3:,} "
        "entries elsewhere and one directory of the given size; "
        f"{points[0]['report']['system']['runs']} runs per cell. {OVERLAY} ÷ composefs:",
        "",
        "| largest directory | " + " | ".join(f"{w} {c}" for w in ("ls-lR", "stat-random") for c in ("cold", "warm")) + " |",
        "|---:|" + "---:|" * 4,
    ]
    for point in points:
        cells = []
        for workload in ("ls-lR", "stat-random"):
            for cache in ("cold", "warm"):
                r = ratio(point["report"], OVERLAY, workload, cache)
                cells.append(f"{r['ratio']:.2f}×" if r else "–")
        lines.append(f"| {point['value']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_ratio(sweep, index, workload, cache):
    if not sweep:
        return None
    r = ratio(sweep["points"][index]["report"], OVERLAY, workload, cache)
    return r["ratio"] if r else None


def div(a, b):
    return a / b if b and b > 0 and a is not None and a >= 0 else None


def times(a, b):
    q = div(a, b)
    return f"{q:.2f}×" if q is not None else "–"


def trend(first, last):
    change = last / first
    if change > 1.15:
        return "grows"
    if change < 1 / 1.15:
        return "shrinks"
    return "stays about level"


def word(r, faster="faster", slower="slower"):
    if r is None:
        return "not measured"
    if r < 0.97:
        return f"{1 / r:.2f}× {faster}"
    if r > 1.03:
        return f"{r:.2f}× {slower}"
    return "as fast (within 3 %)"


def main():
    directory, output = sys.argv[1], sys.argv[2]
    cs9, usr = load(directory, "cs9.json"), load(directory, "usr.json")
    cs9d, usrd = load(directory, "cs9-density.json"), load(directory, "usr-density.json")
    sweep = load(directory, "sweep.json")
    system = cs9["system"]
    out = []
    out.append("# What each stack costs: composefs and the overlay option, measured side by side\n")
    out.append(
        "Regenerate this page with `sudo scripts/findings` (about 30 minutes): it builds the released "
        "`ovlcfs`, runs every measurement below with it, keeps the raw reports in "
        "[`docs/findings/`](findings/) (JSON with every sample, Markdown, SVG) and rewrites this page "
        f"from them. Measured on {system['date'][:10]}: kernel {system['kernel']}, {system['cpu']}, "
        f"{system['cores']} cores, {system['memoryBytes'] / (1 << 30):.0f} GiB; a VM, so medians of "
        "interleaved runs and their ratios are what to read, not single times.\n"
    )
    out.append(
        "The models: **cs9** is CentOS Stream 9 minimal (`Examples/`, "
        f"{cs9['system']['entries']:,} entries; objects are sparse stand-ins, so reads measure the "
        "path to the object, not a disk), and **/usr** is this machine's /usr "
        + (f"({usr['system']['entries']:,} entries, {size(usr['system']['fileBytes'])}; objects are hard links "
           "to the real files, so reads read real data)" if usr else "(not measured)")
        + ". composefs is an EROFS image mounted from its file with the objects as a data-only "
        f"overlay layer; the overlay option is a squashfs image on a loop device under the same overlayfs "
        f"(`{OVERLAY}`: metadata lz4-compressed, the default of `ovlcfs build`; `{RAW}`: stored raw). Both "
        "go through the same mount driver (`ovlcfs mount`). The verified variants (fs-verity and "
        "dm-verity) cannot run on this host (no device-mapper, no fs-verity); issue 18 measures them in a VM.\n"
    )

    # The answer.
    def r_of(report, workload, cache, arm=OVERLAY):
        r = ratio(report, arm, workload, cache) if report else None
        return r["ratio"] if r else None

    out.append("## The answer in brief\n")
    bullets = []
    bullets.append(
        f"**Walks.** On cs9 `ls -lR` through the overlay option is {word(r_of(cs9, 'ls-lR', 'cold'))} cold and "
        f"{word(r_of(cs9, 'ls-lR', 'warm'))} warm than through composefs"
        + (
            f"; on /usr {word(r_of(usr, 'ls-lR', 'cold'))} cold and {word(r_of(usr, 'ls-lR', 'warm'))} warm."
            if usr
            else "."
        )
    )
    for label, report in (("cs9", cs9), ("/usr", usr)):
        if not report:
            continue
        candidates = [r for r in report["ratios"] if r["arm"] == OVERLAY and r["workload"] in TREE]
        if not candidates:
            continue
        worst = max(candidates, key=lambda r: r["ratio"])
        best = min(candidates, key=lambda r: r["ratio"])
        bullets.append(
            f"**The widest gap on {label}** is {worst['workload']} {worst['cache']}: {worst['ratio']:.2f}× composefs "
            f"[{worst['low']:.2f}–{worst['high']:.2f}]; the overlay option does best at {best['workload']} "
            f"{best['cache']} ({best['ratio']:.2f}×)."
        )
    rr = ratio(usr or cs9, OVERLAY, "read-random", "cold")
    bullets.append(
        f"**Reads** of file data go to the same objects through the same overlayfs redirect: random reads "
        f"on {'/usr (real data)' if usr else 'cs9'} are {word(rr['ratio'] if rr else None)} cold, which is the "
        "cold lookup of each file's path (see stat-random), not the data; warm they are "
        f"{word(r_of(usr or cs9, 'read-random', 'warm'))}."
    )
    mc, mw = result(cs9, "composefs", "mount", "cold"), result(cs9, OVERLAY, "mount", "cold")
    if mc and mw:
        bullets.append(
            f"**Mounting** one cs9 image takes {secs(mc['median'])} for composefs and {secs(mw['median'])} for "
            f"the overlay option cold ({times(mw['median'], mc['median'])}); unmounting "
            f"{secs(med(mc['unmountSamples']))} and {secs(med(mw['unmountSamples']))}."
        )
    dc, do = density_of(cs9d, "composefs"), density_of(cs9d, OVERLAY)
    if dc and do:
        bullets.append(
            f"**Kernel objects per mounted image** (counted while {dc['images']} were mounted): composefs "
            f"{dc['kernelObjects']['mounts']:.0f} mount + {dc['kernelObjects']['filesystems'] - dc['kernelObjects']['mounts']:.0f} "
            f"detached, {dc['kernelObjects']['loopDevices']:.0f} loop devices; the overlay option "
            f"{do['kernelObjects']['mounts']:.0f} mount + {do['kernelObjects']['filesystems'] - do['kernelObjects']['mounts']:.0f} "
            f"detached, {do['kernelObjects']['loopDevices']:.0f} loop device. Neither uses a dm device unverified. "
            "The charge of 'more mounts' does not hold: both stacks are a lower filesystem under one overlay; "
            "the overlay option's extra object is the loop device (on this kernel EROFS mounts its file directly; "
            "before 6.12 composefs needs a loop device too)."
        )
        bullets.append(
            f"**Memory per mounted and walked cs9 image**: inode and dentry slabs {size(dc['memory']['slabBytes'])} "
            f"(composefs) and {size(do['memory']['slabBytes'])} ({times(do['memory']['slabBytes'], dc['memory']['slabBytes'])}); "
            f"page cache {size(dc['memory']['pageCacheBytes'])} and {size(do['memory']['pageCacheBytes'])} "
            f"({times(do['memory']['pageCacheBytes'], dc['memory']['pageCacheBytes'])})."
        )
    ic = next((i for i in cs9["images"] if i["arm"] == "composefs"), None)
    io = next((i for i in cs9["images"] if i["arm"] == OVERLAY), None)
    if ic and io:
        bullets.append(
            f"**Images**: the cs9 overlay image is {size(io['bytes'])} against composefs's {size(ic['bytes'])} "
            f"({times(io['bytes'], ic['bytes'])}), built in {secs(io['buildSeconds'])} against "
            f"{secs(ic['buildSeconds'])}."
        )
    vm = load(directory, "vm-verity.json")
    if vm:
        pairs = [("composefs-verity", "composefs"), ("overlay-disk-lz4", OVERLAY)]
        got = [(result(vm, a, "ls-lR", "cold"), result(vm, b, "ls-lR", "cold")) for a, b in pairs]
        if all(a and b for a, b in got):
            bullets.append(
                f"**Integrity** (6.12 VM, emulated): verifying costs composefs {times(got[0][0]['median'], got[0][1]['median'])} "
                f"and the overlay option {times(got[1][0]['median'], got[1][1]['median'])} on a cold `ls -lR`; the "
                "overlay option's verified stack adds a dm device per image, composefs's nothing."
            )
    s0, s1 = sweep_ratio(sweep, 0, "stat-random", "cold"), sweep_ratio(sweep, -1, "stat-random", "cold")
    l0, l1 = sweep_ratio(sweep, 0, "ls-lR", "cold"), sweep_ratio(sweep, -1, "ls-lR", "cold")
    if s0 and s1 and l0 and l1:
        bullets.append(
            f"**Large directories** (the sweep below, {sweep['points'][0]['value']:,} to "
            f"{sweep['points'][-1]['value']:,} entries in the largest directory): cold `ls -lR` {trend(l0, l1)}, "
            f"from {l0:.2f}× to {l1:.2f}× composefs; cold random `stat` {trend(s0, s1)}, from {s0:.2f}× to {s1:.2f}×."
        )
    out.append("\n".join(f"- {b}" for b in bullets) + "\n")

    out.append("## Walks and reads\n")
    out.append(walk_table(cs9, "cs9"))
    if usr:
        out.append(walk_table(usr, "/usr (real objects)"))
    out.append("## CPU time\n")
    out.append(cpu_table(cs9, "cs9"))
    if usr:
        out.append(cpu_table(usr, "/usr"))

    out.append("## Mount and unmount latency\n")
    out.append(
        "One image mounted with its objects and unmounted again through `ovlcfs mount`/`umount` "
        "(unmount: until the loop device is gone too); cold runs drop caches first. Median, and ÷ composefs.\n"
    )
    rows = mount_rows(cs9, "cs9") + (mount_rows(usr, "/usr") if usr else [])
    out.append("| model | cache | arm | mount | unmount |\n|---|---|---|---:|---:|\n" + "\n".join(rows) + "\n")

    out.append("## Many images at once\n")
    out.append(
        "N distinct copies of one image mounted at once (as a host running N containers of one image "
        "would), each walked with `ls -lR`, then unmounted. Seconds for all N; kernel objects counted "
        "during the run (mount table, `/sys/block/loop*`, `/sys/class/block/dm-*`; detached lower "
        "mounts, in no table, from the mount plan); memory per image from a dropped-caches baseline "
        "(inode and dentry slabs from `/proc/slabinfo`; page cache and buffers from `/proc/meminfo`).\n"
    )
    rows = density_rows(cs9d, "cs9") + density_rows(usrd, "/usr")
    out.append(
        "| model | arm | N | mount all | walk all | umount all | mounts per image | loop devices | dm devices | "
        "inode+dentry slab per image | all slab per image | vmalloc+percpu per image | page cache per image |\n"
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n"
    )

    out.append("## Images\n")
    rows = image_rows(cs9, "cs9") + (image_rows(usr, "/usr") if usr else [])
    out.append("| model | arm | size | build (`ovlcfs build`, warm) |\n|---|---|---:|---:|\n" + "\n".join(rows) + "\n")

    out.append("## Steps to use each stack\n")
    out.append(
        "| | composefs | the overlay option |\n|---|---|---|\n"
        "| build | `mkcomposefs --digest-store=OBJECTS DIR IMAGE.cfs` | `ovlcfs build DIR --objects OBJECTS -o IMAGE.sqfs` |\n"
        "| mount | `mount -t composefs IMAGE.cfs -o basedir=OBJECTS DIR` | `mount -t ovlcfs IMAGE.sqfs -o objects=OBJECTS DIR` |\n"
        "| what the helper does | EROFS from the file, overlay with a data-only layer | loop device, squashfs, overlay with a data-only layer |\n"
        "| verified | `digest=` (fs-verity on the image), `verity` on objects | `--disk` (dm-verity GPT image), `verity=require` on objects |\n"
        "| unmount | `umount DIR` | `umount DIR` (the loop device autoclears) |\n\n"
        "With `mount.ovlcfs` installed (`scripts/install`) both are one build command and one mount "
        "command, fstab lines included; the overlay option needs no kernel code outside mainline "
        "squashfs, loop and overlayfs.\n"
    )

    out.append("## How the gap grows with directory size\n")
    out.append(sweep_section(sweep))

    if vm:
        out.append("## With integrity on (Debian 6.12 under QEMU)\n")
        out.append(integrity_section(vm))

    out.append("## What still separates the stacks, and what would close it\n")
    out.append(closing(cs9, usr, cs9d, sweep, vm))
    with open(output + ".tmp", "w") as f:
        f.write("\n".join(out))
    os.replace(output + ".tmp", output)


def integrity_section(vm):
    system = vm["system"]
    lines = [
        f"`scripts/vm-bench.sh` ({system['source'].split('/')[-1]}, {system['runs']} runs, kernel {system['kernel']}): "
        "**measured under QEMU TCG**, software emulation, so seconds are not this host's; the ratios "
        "(both stacks pay the emulation alike) and the block-device read counts (exact) are what to read. "
        "`composefs-verity` is the `.cfs` with fs-verity, mounted with its digest pinned; `overlay-disk-lz4` "
        "is the GPT disk through dm-verity; both check every object's digest (`verity=require`). The objects "
        "are stand-ins named by their own fs-verity digests on ext4 with fs-verity enabled, for every arm. "
        "Raw report: [findings/vm-verity.md](findings/vm-verity.md).",
        "",
        "| workload | cache | composefs | composefs-verity | overlay-data-only-lz4 | overlay-disk-lz4 | "
        "integrity costs composefs | integrity costs the overlay option |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in ("ls-lR", "walk", "stat-random", "getxattr", "read-random", "read-all", "mount"):
        for cache in ("cold", "warm"):
            cells = [result(vm, a, workload, cache) for a in
                     ("composefs", "composefs-verity", OVERLAY, "overlay-disk-lz4")]
            if any(c is None for c in cells):
                continue
            a, av, b, bv = (c["median"] for c in cells)
            lines.append(
                f"| {workload} | {cache} | {secs(a)} | {secs(av)} | {secs(b)} | {secs(bv)} | "
                f"{times(av, a)} | {times(bv, b)} |"
            )
    lines += [
        "",
        "Block-device reads per run (median requests / bytes; cold):",
        "",
        "| workload | arm | loop | dm | virtio (the disk holding images and objects) |",
        "|---|---|---:|---:|---:|",
    ]
    for workload in ("ls-lR", "read-all"):
        for arm in ("composefs", "composefs-verity", OVERLAY, "overlay-disk-lz4"):
            r = result(vm, arm, workload, "cold")
            if r is None or not r.get("blockReadRequests"):
                continue
            cells = []
            for kind in ("loop", "dm", "virtio"):
                req = med(r["blockReadRequests"].get(kind, [0]))
                byt = med(r["blockReadBytes"].get(kind, [0]))
                cells.append(f"{req:.0f} / {size(byt)}" if req else "0")
            lines.append(f"| {workload} | {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def closing(cs9, usr, cs9d, sweep, vm=None):
    items = []
    do, dc = density_of(cs9d, OVERLAY), density_of(cs9d, "composefs")
    mc, mo = result(cs9, "composefs", "mount", "cold"), result(cs9, OVERLAY, "mount", "cold")
    if do and mc and mo:
        latency = div(mo["median"], mc["median"])
        items.append(
            "**The loop device.** Each overlay image holds one loop device "
            f"({do['kernelObjects']['loopDevices']:.0f} per image, counted), and every read of the image goes "
            "through the block layer twice (squashfs's bio to the loop device, the loop device's read of the "
            f"file); cold mount latency is {times(mo['median'], mc['median'])} composefs's"
            + (" — attaching it is not what costs." if latency is not None and latency < 1.1 else ".")
            + " "
            "EROFS has mounted regular files directly since 6.12 (`CONFIG_EROFS_FS_BACKED_BY_FILE`); "
            "the same for squashfs (a file-backed read path, as EROFS added) would remove the loop device "
            "and its attach/detach from every mount: one kernel object fewer per image."
        )
    s0, s1 = sweep_ratio(sweep, 0, "stat-random", "cold"), sweep_ratio(sweep, -1, "stat-random", "cold")
    w0, w1 = sweep_ratio(sweep, 0, "stat-random", "warm"), sweep_ratio(sweep, -1, "stat-random", "warm")
    l0, l1 = sweep_ratio(sweep, 0, "ls-lR", "cold"), sweep_ratio(sweep, -1, "ls-lR", "cold")
    if s0 and s1 and l0 and l1:
        first, last = f"{sweep['points'][0]['value']:,}", f"{sweep['points'][-1]['value']:,}"
        text = (
            "**Large directories.** squashfs finds a name by a linear scan from the nearest directory index "
            "entry, and reads a directory through its compressed metadata blocks one at a time; EROFS "
            "binary-searches sorted names in plain blocks that the page cache reads ahead. As the largest "
            f"directory grows from {first} to {last} entries, cold random `stat` {trend(s0, s1)} ({s0:.2f}× to "
            f"{s1:.2f}× composefs"
            + (f"; warm {w0:.2f}× to {w1:.2f}×" if w0 and w1 else "")
            + f") and cold `ls -lR` {trend(l0, l1)} ({l0:.2f}× to {l1:.2f}×). "
        )
        if s1 / s0 < 1.15:
            text += (
                "The dense directory index `ovlcfs build` writes (an entry every √n names) keeps a lookup in a "
                "large directory from costing more than in a small one; cold random stat's gap is the same "
                "everywhere — the per-lookup cost of reading and decompressing metadata blocks, not the scan. "
            )
        if l1 / l0 > 1.15:
            text += (
                "What grows is listing a large directory cold. Reading a directory's metadata blocks ahead "
                "(readahead in squashfs's directory reader) would address it without a format change."
            )
        items.append(text)
    raw_cold = ratio(cs9, RAW, "ls-lR", "cold")
    lz4_cold = ratio(cs9, OVERLAY, "ls-lR", "cold")
    if raw_cold and lz4_cold:
        items.append(
            "**Metadata compression.** EROFS metadata is never compressed; squashfs's is by default. "
            f"Cold `ls -lR` on cs9 is {lz4_cold['ratio']:.2f}× composefs with lz4 metadata and "
            f"{raw_cold['ratio']:.2f}× with it stored raw (`--metadata-compression none`), at the price of a "
            "larger image. This is a choice at build time, not a kernel change."
        )
    if do and dc:
        items.append(
            "**Memory.** Per mounted and walked image the inode and dentry slabs cost "
            f"{times(do['memory']['slabBytes'], dc['memory']['slabBytes'])} composefs's and the page cache "
            f"{times(do['memory']['pageCacheBytes'], dc['memory']['pageCacheBytes'])}: both stacks keep an "
            "overlay inode and a lower inode per file, and squashfs's and EROFS's inode caches are of "
            "one size (704 and 696 bytes per object in this kernel's `/proc/slabinfo`). The page cache "
            "differs more than the images do: after a walk `fincore` finds only the image's own size cached "
            "in the image file, and the rest is held by the filesystems' inodes (EROFS caches directory "
            "blocks in each directory's page cache as well as in the image file's). "
            f"An lz4 image also holds {size(do['memory'].get('vmallocAndPercpuBytes', 0))} of vmalloc'd memory "
            f"per mount (squashfs's decompressor buffers; composefs: {size(dc['memory'].get('vmallocAndPercpuBytes', 0))}). "
            "Sharing one lower superblock between mounts of the same image would cut the slab cost — for both."
        )
    text = (
        "**Integrity.** Unverified, neither stack uses device-mapper. Verified, composefs checks its "
        "image with fs-verity (no new kernel object) while the overlay option adds one dm-verity device "
        "per image, and every metadata read passes through it."
    )
    if vm:
        def cost(verified, plain, workload):
            a, b = result(vm, verified, workload, "cold"), result(vm, plain, workload, "cold")
            return times(a["median"], b["median"]) if a and b else "–"

        text += (
            f" In the 6.12 VM (QEMU TCG) a cold `ls -lR` costs composefs {cost('composefs-verity', 'composefs', 'ls-lR')} "
            f"with integrity and the overlay option {cost('overlay-disk-lz4', OVERLAY, 'ls-lR')}; a cold read of "
            f"every file {cost('composefs-verity', 'composefs', 'read-all')} and "
            f"{cost('overlay-disk-lz4', OVERLAY, 'read-all')}. Emulation inflates hashing, so these overstate "
            "both; the block-device counts above are exact. Verifying the image with fs-verity (a file digest "
            "checked at mount, pages checked as read) instead of a dm-verity device would take the dm device "
            "and its cost out of the overlay option: squashfs would need to be mountable from a file for that."
        )
    items.append(text)
    return "\n".join(f"{n}. {text}" for n, text in enumerate(items, 1)) + "\n"


if __name__ == "__main__":
    main()
