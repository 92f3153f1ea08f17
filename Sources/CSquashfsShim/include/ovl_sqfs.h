// Thin C helpers for libsquashfs, for what Swift cannot express directly.
// Only the SquashfsWriter module imports this.
#ifndef OVL_SQFS_H
#define OVL_SQFS_H

#include <stddef.h>
#include <stdint.h>
#include <sqfs/predef.h>
#include <sqfs/io.h>
#include <sqfs/super.h>
#include <sqfs/compressor.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/dir_writer.h>
#include <sqfs/dir_reader.h>
#include <sqfs/dir.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/meta_writer.h>
#include <sqfs/xattr_writer.h>
#include <sqfs/xattr_reader.h>
#include <sqfs/xattr.h>
#include <sqfs/frag_table.h>
#include <sqfs/data_reader.h>
#include <sqfs/error.h>

// Why: flexible array members (`extra[]`, `name[]`, `key[]`, `value[]`) do not import into Swift.
static inline uint8_t *ovl_sqfs_inode_extra(sqfs_inode_generic_t *inode) { return (uint8_t *)inode->extra; }
static inline const uint8_t *ovl_sqfs_inode_extra_const(const sqfs_inode_generic_t *inode) { return (const uint8_t *)inode->extra; }
static inline const char *ovl_sqfs_tree_node_name(const sqfs_tree_node_t *node) { return (const char *)node->name; }
static inline const uint8_t *ovl_sqfs_xattr_key(const sqfs_xattr_entry_t *entry) { return entry->key; }
static inline const uint8_t *ovl_sqfs_xattr_value(const sqfs_xattr_value_t *value) { return value->value; }
static inline const uint8_t *ovl_sqfs_dir_entry_name(const sqfs_dir_entry_t *entry) { return entry->name; }

// Why: libsquashfs opens files by path only. This read-only file reads `size` bytes of an
// already open descriptor from `offset` on (a partition of a disk image, or the whole file
// with the descriptor the caller sniffed), with pread; the descriptor is dup'ed.
// NULL with errno set on failure.
sqfs_file_t *ovl_sqfs_open_fd_range(int fd, sqfs_u64 offset, sqfs_u64 size);

// Why: sqfs_inode_generic_t ends in a flexible array; Swift cannot size the allocation.
// Returns a zeroed inode with `payload_bytes` of extra payload (freed with sqfs_free).
sqfs_inode_generic_t *ovl_sqfs_inode_alloc(size_t payload_bytes);

// Why: libsquashfs has no "store metadata uncompressed" switch. This compressor reports
// every block as incompressible, so meta writers (and the block processor) store blocks raw.
// `id` is the kernel-supported compressor id written into the superblock.
sqfs_compressor_t *ovl_sqfs_null_compressor_create(SQFS_COMPRESSOR id, size_t block_size);

// Why: calling C function pointers stored in structs is clumsy from Swift.
static inline sqfs_u64 ovl_sqfs_file_size(sqfs_file_t *file) { return file->get_size(file); }
static inline int ovl_sqfs_file_write_at(sqfs_file_t *file, sqfs_u64 offset, const void *data, size_t size) {
    return file->write_at(file, offset, data, size);
}
static inline int ovl_sqfs_file_read_at(sqfs_file_t *file, sqfs_u64 offset, void *data, size_t size) {
    return file->read_at(file, offset, data, size);
}
static inline int ovl_sqfs_compressor_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file) {
    return cmp->write_options(cmp, file);
}
static inline int ovl_sqfs_compressor_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file) {
    return cmp->read_options(cmp, file);
}
// Why: sqfs_destroy/sqfs_free are static inline or take void*; one typed entry point each.
static inline void ovl_sqfs_destroy(void *object) { sqfs_destroy(object); }
static inline void ovl_sqfs_free(void *memory) { sqfs_free(memory); }

#endif
