// Linux interfaces that Swift's Glibc module does not bring in. Only LinuxSys imports this.
#ifndef OVL_LINUX_H
#define OVL_LINUX_H

// Why: <sys/xattr.h> is not part of the Glibc module map.
#include <sys/xattr.h>

#include <sys/ioctl.h>

// Why: FICLONE is a function-like _IOW macro, which Swift does not import; <linux/fs.h>
// would clash with glibc's stat macros, so the request is spelled out (_IOW(0x94, 9, int)).
static inline unsigned long ovl_ficlone_request(void) { return _IOW(0x94, 9, int); }
// Why: SEEK_DATA/SEEK_HOLE are only declared with _GNU_SOURCE, which Swift's Glibc lacks.
static const int ovl_seek_data = 3;
static const int ovl_seek_hole = 4;

#endif
