#!/usr/bin/env python3
"""Prints one line per entry under ROOT (sorted): path, type, mode, uid, gid, size (not for
directories), mtime (whole seconds with --seconds), link target, user.*/security.capability
xattrs and the sha256 of a regular file's content. Two trees that print the same are the same
to anyone who reads them."""
import hashlib, os, stat, sys

root = sys.argv[1]
seconds = "--seconds" in sys.argv
lines = []
for directory, dirs, files in os.walk(root):
    for name in sorted(dirs + files) + ([""] if directory == root else []):
        path = os.path.join(directory, name) if name else directory
        st = os.lstat(path)
        rel = "/" + os.path.relpath(path, root) if name else "/"
        kind = stat.S_IFMT(st.st_mode)
        mtime = st.st_mtime_ns // 1_000_000_000 if seconds else st.st_mtime_ns
        fields = [rel, oct(kind), oct(stat.S_IMODE(st.st_mode)), str(st.st_uid), str(st.st_gid),
                  "-" if stat.S_ISDIR(st.st_mode) else str(st.st_size), str(mtime)]
        fields.append(os.readlink(path) if stat.S_ISLNK(st.st_mode) else "-")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            fields.append("%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
        xattrs = []
        for key in sorted(os.listxattr(path, follow_symlinks=False)):
            if key.startswith("user.") or key == "security.capability":
                xattrs.append(key + "=" + os.getxattr(path, key, follow_symlinks=False).hex())
        fields.append(",".join(xattrs) or "-")
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                fields.append(hashlib.sha256(f.read()).hexdigest())
        lines.append(" ".join(fields))
print("\n".join(sorted(lines)))
