#define _GNU_SOURCE
#include "ovl_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

const uint32_t ovl_lo_flags_read_only = LO_FLAGS_READ_ONLY;
const uint32_t ovl_lo_flags_autoclear = LO_FLAGS_AUTOCLEAR;
const uint32_t ovl_lo_flags_direct_io = LO_FLAGS_DIRECT_IO;

int ovl_loop_get_free(int control_fd) { return ioctl(control_fd, LOOP_CTL_GET_FREE); }

int ovl_loop_configure(int loop_fd, int backing_fd, uint32_t lo_flags, uint64_t offset, uint64_t size_limit,
                       uint32_t block_size, const char *file_name)
{
    struct loop_config config;
    memset(&config, 0, sizeof(config));
    config.fd = (uint32_t)backing_fd;
    config.block_size = block_size;
    config.info.lo_offset = offset;
    config.info.lo_sizelimit = size_limit;
    config.info.lo_flags = lo_flags;
    if (file_name != NULL)
        strncpy((char *)config.info.lo_file_name, file_name, LO_NAME_SIZE - 1);
    return ioctl(loop_fd, LOOP_CONFIGURE, &config);
}

int ovl_loop_clear(int loop_fd) { return ioctl(loop_fd, LOOP_CLR_FD, 0); }

int ovl_loop_flags(int loop_fd, uint32_t *flags_out)
{
    struct loop_info64 info;
    memset(&info, 0, sizeof(info));
    int rc = ioctl(loop_fd, LOOP_GET_STATUS64, &info);
    if (rc == 0)
        *flags_out = info.lo_flags;
    return rc;
}

int ovl_fsopen(const char *fs_name) { return fsopen(fs_name, FSOPEN_CLOEXEC); }

int ovl_fsconfig_string(int fs_fd, const char *key, const char *value)
{
    return fsconfig(fs_fd, FSCONFIG_SET_STRING, key, value, 0);
}

int ovl_fsconfig_flag(int fs_fd, const char *key) { return fsconfig(fs_fd, FSCONFIG_SET_FLAG, key, NULL, 0); }

int ovl_fsconfig_create(int fs_fd) { return fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0); }

int ovl_fsmount(int fs_fd, uint32_t attributes)
{
    unsigned int flags = 0;
    if (attributes & OVL_MOUNT_READ_ONLY)
        flags |= MOUNT_ATTR_RDONLY;
    if (attributes & OVL_MOUNT_NOSUID)
        flags |= MOUNT_ATTR_NOSUID;
    if (attributes & OVL_MOUNT_NODEV)
        flags |= MOUNT_ATTR_NODEV;
    if (attributes & OVL_MOUNT_NOEXEC)
        flags |= MOUNT_ATTR_NOEXEC;
    if (attributes & OVL_MOUNT_NOSYMFOLLOW)
        flags |= 0x00200000; /* MOUNT_ATTR_NOSYMFOLLOW (5.10+) */
    return fsmount(fs_fd, FSMOUNT_CLOEXEC, flags);
}

int ovl_move_mount(int mount_fd, const char *target)
{
    return move_mount(mount_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

int ovl_umount(const char *target, int detach) { return umount2(target, detach ? MNT_DETACH : 0); }

int ovl_mount_legacy(const char *source, const char *target, const char *type, int read_only, const char *options)
{
    return mount(source, target, type, read_only ? MS_RDONLY : 0, options);
}

#ifndef __NR_getxattrat
#  if defined(__x86_64__) || defined(__aarch64__)
#    define __NR_getxattrat 464
#    define __NR_listxattrat 465
#  endif
#endif

struct ovl_xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

long ovl_listxattrat(int dir_fd, const char *name, char *list, size_t size)
{
#ifdef __NR_listxattrat
    return syscall(__NR_listxattrat, dir_fd, name, AT_SYMLINK_NOFOLLOW, list, size);
#else
    errno = ENOSYS;
    return -1;
#endif
}

long ovl_getxattrat(int dir_fd, const char *name, const char *key, void *value, size_t size)
{
#ifdef __NR_getxattrat
    struct ovl_xattr_args args = { .value = (uint64_t)(uintptr_t)value, .size = (uint32_t)size, .flags = 0 };
    return syscall(__NR_getxattrat, dir_fd, name, AT_SYMLINK_NOFOLLOW, key, &args, sizeof(args));
#else
    errno = ENOSYS;
    return -1;
#endif
}

#include <linux/openat2.h>

int ovl_openat_beneath(int dir_fd, const char *path, int flags, unsigned int mode)
{
    struct open_how how = {
        .flags = (uint64_t)flags,
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
}

#include <sys/vfs.h>

int ovl_filesystem_type(const char *path, unsigned long *type)
{
    struct statfs info;
    if (statfs(path, &info) != 0)
        return -1;
    *type = (unsigned long)info.f_type;
    return 0;
}

#include <stdio.h>
#include <sys/stat.h>

int ovl_open_directory_path(const char *path)
{
    struct open_how how = {
        .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
}

int ovl_umount_at(int parent_fd, const char *name, int detach, long long expected_mount_id)
{
    if (expected_mount_id >= 0) {
        struct statx info;
        if (statx(parent_fd, name, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &info) != 0)
            return -1;
        /* Kernels before 5.8 report no mount ID: the check is skipped there. */
        if ((info.stx_mask & STATX_MNT_ID) && (long long)info.stx_mnt_id != expected_mount_id) {
            errno = ESTALE;
            return -1;
        }
    }
    char path[64 + 256];
    if (snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", parent_fd, name) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return umount2(path, UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0));
}

#include <linux/fsverity.h>

int ovl_measure_verity(int fd, uint8_t *digest, uint16_t capacity, uint16_t *algorithm)
{
    union {
        struct fsverity_digest header;
        uint8_t bytes[sizeof(struct fsverity_digest) + 64];
    } buffer;
    if (capacity > 64) {
        errno = EINVAL;
        return -1;
    }
    memset(&buffer, 0, sizeof(buffer));
    buffer.header.digest_size = 64;
    if (ioctl(fd, FS_IOC_MEASURE_VERITY, &buffer) != 0)
        return -1;
    if (buffer.header.digest_size != capacity) {
        errno = EMSGSIZE;
        return -1;
    }
    *algorithm = buffer.header.digest_algorithm;
    memcpy(digest, buffer.header.digest, capacity);
    return 0;
}

int ovl_enable_verity(int fd)
{
    struct fsverity_enable_arg arg;
    memset(&arg, 0, sizeof(arg));
    arg.version = 1;
    arg.hash_algorithm = FS_VERITY_HASH_ALG_SHA256;
    arg.block_size = 4096;
    return ioctl(fd, FS_IOC_ENABLE_VERITY, &arg);
}
