#!/usr/bin/env python3
"""Builds the ingest test tree and prints an independent listing of it as JSON.

make_tree.py create ROOT   -- every file type, hard links across directories, xattrs in
                              every namespace the process may set, names with spaces,
                              newlines and non-UTF-8 bytes, empty files, a 3 GiB sparse file.
make_tree.py list ROOT     -- one record per path (hex of the path bytes): type, mode, uid,
                              gid, size, mtime, rdev, (dev, ino), link target, xattrs.
"""
import json, os, socket, stat, sys

def create(root):
    r = os.fsencode(root)
    j = lambda *p: os.path.join(r, *p)
    os.makedirs(j(b"dir", b"nested"))
    os.makedirs(j(b"other"))
    with open(j(b"empty"), "wb"):
        pass
    with open(j(b"small"), "wb") as f:
        f.write(b"tiny")
    with open(j(b"dir", b"big"), "wb") as f:
        f.write(bytes((i * 7) % 251 for i in range(300_000)))
    os.link(j(b"dir", b"big"), j(b"other", b"big-link"))
    os.link(j(b"dir", b"big"), j(b"a-first-link"))
    with open(j(b"name with spaces"), "wb") as f:
        f.write(b"x" * 100)
    with open(j(b"new\nline"), "wb") as f:
        f.write(b"y" * 70)
    with open(j(b"bytes-\xff\xfe"), "wb") as f:
        f.write(b"z" * 65)
    with open(j(b"dir", b"nested", b"copy"), "wb") as f:
        f.write(bytes((i * 7) % 251 for i in range(300_000)))
    with open(j(b"sparse"), "wb") as f:
        f.truncate(3 << 30)
        f.seek(1 << 30)
        f.write(b"data in the middle")
    os.symlink(b"dir/big", j(b"link"))
    os.symlink(b"../../outside", j(b"dir", b"escape"))
    os.symlink(b"loop", j(b"loop"))
    os.mkfifo(j(b"fifo"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(j(b"socket"))
    s.close()
    os.setxattr(j(b"dir", b"big"), b"user.color", b"blue")
    os.setxattr(j(b"dir"), b"user.empty", b"")
    if os.geteuid() == 0:
        os.mknod(j(b"null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(j(b"whiteout"), 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        os.setxattr(j(b"small"), b"trusted.overlay.opaque", b"y")
        os.setxattr(j(b"small"), b"trusted.test", b"\x00\x01binary")
        os.setxattr(j(b"small"), b"security.test", b"label")
        os.chown(j(b"small"), 1234, 5678, follow_symlinks=False)
    os.chmod(j(b"dir", b"big"), 0o4751)
    os.utime(j(b"small"), ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))

def listing(root):
    r = os.fsencode(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(r):
        for name in [b""] + dirnames + filenames if dirpath == r else dirnames + filenames:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            rel = b"/" + os.path.relpath(p, r) if p != r else b"/"
            if rel == b"/.":
                rel = b"/"
            rec = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "size": st.st_size,
                   "mtime": st.st_mtime_ns, "rdev": st.st_rdev, "ino": [st.st_dev, st.st_ino],
                   "nlink": st.st_nlink, "xattrs": {}}
            if stat.S_ISLNK(st.st_mode):
                rec["target"] = os.readlink(p).hex()
            for k in os.listxattr(p, follow_symlinks=False):
                rec["xattrs"][k] = os.getxattr(p, k, follow_symlinks=False).hex()
            out[rel.hex()] = rec
    json.dump(out, sys.stdout)

if __name__ == "__main__":
    {"create": create, "list": listing}[sys.argv[1]](sys.argv[2])
