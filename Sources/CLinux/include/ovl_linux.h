// Linux interfaces that Swift's Glibc module does not bring in. Only LinuxSys imports this.
#ifndef OVL_LINUX_H
#define OVL_LINUX_H

// Why: <sys/xattr.h> is not part of the Glibc module map.
#include <sys/xattr.h>

#endif
