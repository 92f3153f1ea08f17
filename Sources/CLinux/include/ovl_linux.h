// Linux interfaces that Swift's Glibc module does not bring in. Only LinuxSys imports this.
#ifndef OVL_LINUX_H
#define OVL_LINUX_H

// Why: <sys/xattr.h> is not part of the Glibc module map.
#include <sys/xattr.h>

#include <stdint.h>
#include <sys/ioctl.h>

// Why: FICLONE is a function-like _IOW macro, which Swift does not import; <linux/fs.h>
// would clash with glibc's stat macros, so the request is spelled out (_IOW(0x94, 9, int)).
static inline unsigned long ovl_ficlone_request(void) { return _IOW(0x94, 9, int); }

/// FS_IOC_MEASURE_VERITY: the file's fs-verity digest (`capacity` bytes) and algorithm; -1 with
/// errno (ENODATA: no verity on this file; ENOTTY/EOPNOTSUPP: none on its filesystem).
int ovl_measure_verity(int fd, uint8_t *digest, uint16_t capacity, uint16_t *algorithm);
/// FS_IOC_ENABLE_VERITY with SHA-256, 4096-byte Merkle blocks and no salt (as `fsverity enable`
/// does by default): 0, or -1 with errno. `fd` must be open read-only with no writer anywhere.
int ovl_enable_verity(int fd);

// Why: <malloc.h> is not part of the Glibc module map.
#include <malloc.h>

// Why: SEEK_DATA/SEEK_HOLE are only declared with _GNU_SOURCE, which Swift's Glibc lacks.
static const int ovl_seek_data = 3;
static const int ovl_seek_hole = 4;
// Why: O_TMPFILE (__O_TMPFILE | O_DIRECTORY) is only declared with _GNU_SOURCE too.
static const int ovl_o_tmpfile = 020200000;

#include <stdint.h>

// Loop devices (LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_CLR_FD). Why: the request numbers
// are macros over _IO and the configuration is a uapi struct with a nested loop_info64.
int ovl_loop_get_free(int control_fd);
int ovl_loop_configure(int loop_fd, int backing_fd, uint32_t lo_flags, uint64_t offset, uint64_t size_limit,
                       uint32_t block_size, const char *file_name);
int ovl_loop_clear(int loop_fd);
int ovl_loop_flags(int loop_fd, uint32_t *flags_out);
extern const uint32_t ovl_lo_flags_read_only;
extern const uint32_t ovl_lo_flags_autoclear;
extern const uint32_t ovl_lo_flags_direct_io;

// The new mount API. Why: thin, typed entry points over glibc's wrappers (and their enums),
// so Swift never sees variadic or macro-only interfaces.
int ovl_fsopen(const char *fs_name);
int ovl_fsconfig_string(int fs_fd, const char *key, const char *value);
int ovl_fsconfig_flag(int fs_fd, const char *key);
int ovl_fsconfig_create(int fs_fd);
/// Mount attributes for ovl_fsmount (our bits, mapped to MOUNT_ATTR_*).
enum { OVL_MOUNT_READ_ONLY = 1, OVL_MOUNT_NOSUID = 2, OVL_MOUNT_NODEV = 4, OVL_MOUNT_NOEXEC = 8, OVL_MOUNT_NOSYMFOLLOW = 16 };
int ovl_fsmount(int fs_fd, uint32_t attributes);
int ovl_move_mount(int mount_fd, const char *target);
int ovl_umount(const char *target, int detach);
int ovl_mount_legacy(const char *source, const char *target, const char *type, int read_only, const char *options);

// listxattrat/getxattrat (Linux 6.13+): xattrs of a name relative to a directory fd without
// following a final symlink. Why: no glibc wrappers yet; called through syscall(2). They
// return -1 with errno ENOSYS on older kernels (callers fall back to /proc/self/fd paths).
// Unmounts the mount at `name` inside the directory `parent_fd` (an O_PATH descriptor), never
// following a symlink there (UMOUNT_NOFOLLOW), if the mount on top at that name still has ID
// `expected_mount_id` (statx STATX_MNT_ID; -1: any). -1 with errno ESTALE when it has another.
// Holding the parent by descriptor closes the window in which a path could be redirected (a
// parent renamed and replaced by a symlink); what remains is a mount that root stacks on the
// same name between the check and umount2, and mount IDs the kernel reuses.
int ovl_umount_at(int parent_fd, const char *name, int detach, long long expected_mount_id);

// An O_PATH descriptor of the directory `path`, resolved without following any symlink.
int ovl_open_directory_path(const char *path);

// statfs(2)'s f_type of the filesystem holding `path` (<sys/vfs.h> is not in the Glibc module).
int ovl_filesystem_type(const char *path, unsigned long *type);

// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: `path` may not
// leave `dir_fd` nor pass through any symlink (Linux 5.6+; -1 with ENOSYS before).
int ovl_openat_beneath(int dir_fd, const char *path, int flags, unsigned int mode);

long ovl_listxattrat(int dir_fd, const char *name, char *list, size_t size);
long ovl_getxattrat(int dir_fd, const char *name, const char *key, void *value, size_t size);

#endif
