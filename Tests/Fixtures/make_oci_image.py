#!/usr/bin/env python3
"""Builds a three-layer OCI image layout for the import tests, with real tools.

Layer 1: GNU tar --format=posix --xattrs --sparse of a tree made on disk (gzip): a sparse file,
hard links, user.* and security.capability xattrs, a name over 100 bytes, a device, a fifo.
Layer 2: hand-made with Python's tarfile (PAX, gzip): an opaque marker after a sibling in its
layer, a whiteout, a file replaced by a directory and a directory by a file, a hard link to a
path the same layer wrote, PAX xattrs and a nanosecond mtime.
Layer 3: uncompressed tar: a whiteout of a hard link's other name and a file over a symlink.

usage: make_oci_image.py WORKDIR         -> WORKDIR/layout (tag 'test'), WORKDIR/layers/*.tar*
       make_oci_image.py WORKDIR HOSTILE -> a one-layer image whose layer is crafted:
         dotdot   an entry '../escaped'
         symlink  'etc2' -> /tmp, then a file 'etc2/planted'
         absolute an entry '/abs/file' (normalised to abs/file: accepted)
         deep     a path 30,000 directories deep (60 KB)
         sparse   a GNU sparse entry claiming 2^63-1 bytes
         xattrs   1,500 entries with a 900 KB PAX xattr each
         double   a layer gzip-compressed twice (diff_id of the plain tar)
         empty    an empty layer (a gzip of nothing), accepted as no entries
         dockerdots  WORKDIR/docker.tar: a docker-archive whose Config is named '...'
       make_oci_image.py WORKDIR multi   -> an image index with linux/amd64 and linux/arm64/v8
         images (a file 'arch' holding the architecture), behind index.json
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

work = sys.argv[1]
layout = os.path.join(work, "layout")
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
os.makedirs(os.path.join(work, "layers"), exist_ok=True)


def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", pax=None, mtime=1_700_000_100):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.linkname = link
    info.size = len(data)
    if pax:
        info.pax_headers = pax
    return info, (io.BytesIO(data) if data else None)


def write_image(layer_paths, platform=None, index=True):
    layers, diff_ids = [], []
    for path, media in layer_paths:
        raw = open(path, "rb").read()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        data = gzip.compress(raw, mtime=0) if media == "tar+gzip" else raw
        descriptor = blob(data)
        descriptor["mediaType"] = "application/vnd.oci.image.layer.v1." + media
        layers.append(descriptor)
    config = {
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "make_oci_image.py"} for _ in layers],
    }
    config_descriptor = blob(json.dumps(config).encode())
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_descriptor, "layers": layers}
    manifest_descriptor = blob(json.dumps(manifest).encode())
    manifest_descriptor["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    manifest_descriptor["annotations"] = {"org.opencontainers.image.ref.name": "test"}
    if platform:
        manifest_descriptor["platform"] = platform
    if not index:
        return manifest_descriptor
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest_descriptor]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(json.dumps({"manifest": manifest_descriptor["digest"], "config": config_descriptor["digest"],
                      "layers": [l["digest"] for l in layers]}))


if len(sys.argv) > 2 and sys.argv[2] == "multi":
    manifests = []
    for arch, variant in [("amd64", None), ("arm64", "v8")]:
        path = os.path.join(work, "layers", arch + ".tar")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
            info, data = entry("arch", data=arch.encode() + b"\n")
            t.addfile(info, data)
        platform = {"os": "linux", "architecture": arch}
        if variant:
            platform["variant"] = variant
        descriptor = write_image([(path, "tar+gzip")], platform=platform, index=False)
        del descriptor["annotations"]
        manifests.append(descriptor)
    image_index = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                   "manifests": manifests}).encode())
    image_index["mediaType"] = "application/vnd.oci.image.index.v1+json"
    image_index["annotations"] = {"org.opencontainers.image.ref.name": "multi"}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [image_index]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    sys.exit(0)

def write_raw_layer(raw, compressed):
    """An image whose one layer blob is `compressed`, with the diff_id of `raw`."""
    path = os.path.join(work, "layers", "raw.tar")
    with open(path, "wb") as f:
        f.write(raw)
    layers_dir = os.path.join(work, "layers")
    descriptor = blob(compressed)
    descriptor["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    config_descriptor = blob(json.dumps(config).encode())
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {"schemaVersion": 2, "config": config_descriptor, "layers": [descriptor],
                "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    manifest_descriptor = blob(json.dumps(manifest).encode())
    manifest_descriptor["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest_descriptor]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def tar_bytes(entries):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, data)
    return out.getvalue()


if len(sys.argv) > 2 and sys.argv[2] in ("deep", "sparse", "xattrs", "double", "empty"):
    kind = sys.argv[2]
    if kind == "deep":
        raw = tar_bytes([entry("a/" * 30000 + "f", data=b"deep\n")])
    elif kind == "sparse":
        big = str(2**63 - 1)
        raw = tar_bytes([entry("huge", data=b"x", pax={
            "GNU.sparse.size": big, "GNU.sparse.numblocks": "1",
            "GNU.sparse.map": str(2**63 - 2) + ",1", "GNU.sparse.name": "huge"})])
    elif kind == "xattrs":
        raw = tar_bytes([entry("f%d" % i, pax={"SCHILY.xattr.user.big": "A" * 900_000}) for i in range(1500)])
    elif kind == "double":
        raw = tar_bytes([entry("f", data=b"twice\n")])
    else:
        raw = b""
    compressed = gzip.compress(raw, mtime=0)
    if kind == "double":
        compressed = gzip.compress(compressed, mtime=0)
    write_raw_layer(raw, compressed)
    sys.exit(0)

if len(sys.argv) > 2 and sys.argv[2] == "dockerdots":
    layer = tar_bytes([entry("f", data=b"docker\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    manifest = json.dumps([{"Config": "...", "RepoTags": ["x:latest"], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(os.path.join(work, "docker.tar"), "w") as t:
        for name, data in [("manifest.json", manifest), ("...", config), ("layer.tar", layer)]:
            info, stream = entry(name, data=data)
            t.addfile(info, stream)
    sys.exit(0)

if len(sys.argv) > 2:
    kind = sys.argv[2]
    crafted = {
        "dotdot": [entry("ok", data=b"fine\n"), entry("../escaped", data=b"outside\n")],
        "symlink": [entry("etc2", tarfile.SYMTYPE, link="/tmp"), entry("etc2/planted", data=b"planted\n")],
        "absolute": [entry("/abs/", tarfile.DIRTYPE, mode=0o755), entry("/abs/file", data=b"absolute\n")],
    }[kind]
    path = os.path.join(work, "layers", kind + ".tar")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for info, data in crafted:
            t.addfile(info, data)
    write_image([(path, "tar+gzip")])
    sys.exit(0)

# Layer 1: a tree on disk, archived by GNU tar.
tree = os.path.join(work, "tree1")
os.makedirs(tree + "/etc", exist_ok=True)
os.makedirs(tree + "/usr/bin", exist_ok=True)
os.makedirs(tree + "/a", exist_ok=True)
os.makedirs(tree + "/wd", exist_ok=True)
os.makedirs(tree + "/d2f/child", exist_ok=True)
os.makedirs(tree + "/dev", exist_ok=True)
long_dir = tree + "/" + "long-directory-name-" * 4
os.makedirs(long_dir, exist_ok=True)
with open(tree + "/etc/hostname", "w") as f:
    f.write("layer1\n")
with open(tree + "/etc/caps", "wb") as f:
    f.write(b"#!/bin/sh\n" * 20)
with open(tree + "/usr/bin/big", "wb") as f:
    f.write(os.urandom(200_000))
os.link(tree + "/usr/bin/big", tree + "/usr/bin/big-link")
with open(tree + "/usr/bin/sparse", "wb") as f:
    f.write(b"head" * 1000)
    f.seek(8 << 20)
    f.write(b"tail" * 1000)
    f.truncate(16 << 20)
for name in ["x", "y"]:
    with open(tree + "/a/" + name, "w") as f:
        f.write(name * 100)
for name in ["gone", "keep"]:
    with open(tree + "/wd/" + name, "w") as f:
        f.write(name * 30)
with open(tree + "/f2d", "w") as f:
    f.write("a file that becomes a directory\n")
with open(tree + "/d2f/child/file", "w") as f:
    f.write("under a directory that becomes a file\n")
with open(os.path.join(long_dir, "a-file-name-longer-than-one-hundred-bytes-" + "x" * 80), "w") as f:
    f.write("long name " * 20)
os.symlink("/usr/bin/big", tree + "/usr/bin/abs-link")
os.symlink("big", tree + "/usr/bin/rel-link")
os.symlink("/etc", tree + "/etc-link")
os.mkfifo(tree + "/dev/fifo")
os.mknod(tree + "/dev/null", 0o20666, os.makedev(1, 3))
os.mknod(tree + "/dev/loop9", 0o60660, os.makedev(7, 9))
subprocess.run(["setfattr", "-n", "user.comment", "-v", "layer one", tree + "/etc/hostname"], check=True)
subprocess.run(["setfattr", "-n", "user.binary", "-v", "0x00ff00ff", tree + "/usr/bin/big"], check=True)
# security.capability: cap_net_bind_service+ep (VFS_CAP_REVISION_2).
subprocess.run(
    ["setfattr", "-n", "security.capability", "-v", "0x0100000200040000000000000000000000000000", tree + "/etc/caps"],
    check=True)
os.chmod(tree + "/etc/caps", 0o4755)
os.chown(tree + "/etc/hostname", 1000, 1000)
for root, dirs, files in os.walk(tree):
    for name in dirs + files:
        path = os.path.join(root, name)
        os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789), follow_symlinks=False)
os.utime(tree, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
layer1 = os.path.join(work, "layers", "layer1.tar")
subprocess.run(
    ["tar", "--format=posix", "--xattrs", "--xattrs-include=*", "--sparse", "--numeric-owner", "-C", tree,
     "-cf", layer1, "."], check=True)


# Layer 2: hand-made, in exactly this order.
layer2 = os.path.join(work, "layers", "layer2.tar")
with tarfile.open(layer2, "w", format=tarfile.PAX_FORMAT) as t:
    for info, data in [
        entry("a/", tarfile.DIRTYPE, mode=0o755),
        entry("a/new", data=b"a sibling before the opaque marker\n"),
        entry("a/.wh..wh..opq"),
        entry("a/after", data=b"after the opaque marker\n"),
        entry("wd/.wh.gone"),
        entry("f2d", tarfile.DIRTYPE, mode=0o750),
        entry("f2d/inner", data=b"inside the new directory\n" * 10),
        entry("d2f", data=b"now a file\n"),
        entry("l2/", tarfile.DIRTYPE, mode=0o755),
        entry("l2/orig", data=os.urandom(5000)),
        entry("l2/link", tarfile.LNKTYPE, link="l2/orig"),
        entry("l2/pax", data=b"pax xattrs\n" * 10,
              pax={"SCHILY.xattr.user.pax": "from a PAX header", "mtime": "1700000200.987654321"}),
    ]:
        t.addfile(info, data)

# Layer 3: uncompressed.
layer3 = os.path.join(work, "layers", "layer3.tar")
with tarfile.open(layer3, "w", format=tarfile.PAX_FORMAT) as t:
    for info, data in [
        entry("usr/bin/.wh.big-link"),
        entry("usr/bin/rel-link", data=b"a file where a symlink was\n" * 5),
        entry("etc/hostname", data=b"layer3\n"),
    ]:
        t.addfile(info, data)

write_image([(layer1, "tar+gzip"), (layer2, "tar+gzip"), (layer3, "tar")])
