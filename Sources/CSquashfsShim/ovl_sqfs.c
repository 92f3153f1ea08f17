#include "ovl_sqfs.h"
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

sqfs_inode_generic_t *ovl_sqfs_inode_alloc(size_t payload_bytes)
{
    sqfs_inode_generic_t *inode = calloc(1, sizeof(*inode) + payload_bytes);
    if (inode != NULL)
        inode->payload_bytes_available = (sqfs_u32)payload_bytes;
    return inode;
}

typedef struct {
    sqfs_compressor_t base;
    sqfs_compressor_config_t cfg;
} null_compressor_t;

static void null_get_configuration(const sqfs_compressor_t *cmp, sqfs_compressor_config_t *cfg)
{
    *cfg = ((const null_compressor_t *)cmp)->cfg;
}

static int null_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
    (void)cmp; (void)file;
    return 0;
}

static int null_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
    (void)cmp; (void)file;
    return 0;
}

static sqfs_s32 null_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size, sqfs_u8 *out, sqfs_u32 outsize)
{
    (void)cmp; (void)in; (void)size; (void)out; (void)outsize;
    return 0; /* "would not shrink": the caller stores the block uncompressed */
}

static sqfs_object_t *null_copy(const sqfs_object_t *obj)
{
    null_compressor_t *copy = malloc(sizeof(*copy));
    if (copy != NULL)
        memcpy(copy, obj, sizeof(*copy));
    return (sqfs_object_t *)copy;
}

static void null_destroy(sqfs_object_t *obj)
{
    free(obj);
}

sqfs_compressor_t *ovl_sqfs_null_compressor_create(SQFS_COMPRESSOR id, size_t block_size)
{
    null_compressor_t *cmp = calloc(1, sizeof(*cmp));
    if (cmp == NULL)
        return NULL;
    if (sqfs_compressor_config_init(&cmp->cfg, id, block_size, 0) != 0) {
        free(cmp);
        return NULL;
    }
    cmp->base.base.destroy = null_destroy;
    cmp->base.base.copy = null_copy;
    cmp->base.get_configuration = null_get_configuration;
    cmp->base.write_options = null_write_options;
    cmp->base.read_options = null_read_options;
    cmp->base.do_block = null_do_block;
    return &cmp->base;
}

typedef struct {
    sqfs_file_t base;
    int fd;
    sqfs_u64 offset;
    sqfs_u64 size;
} range_file_t;

static void range_destroy(sqfs_object_t *obj)
{
    range_file_t *file = (range_file_t *)obj;
    close(file->fd);
    free(file);
}

static int range_read_at(sqfs_file_t *base, sqfs_u64 offset, void *buffer, size_t size)
{
    range_file_t *file = (range_file_t *)base;
    if (offset > file->size || size > file->size - offset)
        return SQFS_ERROR_OUT_OF_BOUNDS;
    unsigned char *out = buffer;
    while (size > 0) {
        ssize_t n = pread(file->fd, out, size, (off_t)(file->offset + offset));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SQFS_ERROR_IO;
        }
        if (n == 0)
            return SQFS_ERROR_OUT_OF_BOUNDS;
        out += n;
        size -= (size_t)n;
        offset += (sqfs_u64)n;
    }
    return 0;
}

static int range_write_at(sqfs_file_t *base, sqfs_u64 offset, const void *buffer, size_t size)
{
    (void)base; (void)offset; (void)buffer; (void)size;
    return SQFS_ERROR_IO;
}

static sqfs_u64 range_get_size(const sqfs_file_t *base)
{
    return ((const range_file_t *)base)->size;
}

static int range_truncate(sqfs_file_t *base, sqfs_u64 size)
{
    (void)base; (void)size;
    return SQFS_ERROR_IO;
}

sqfs_file_t *ovl_sqfs_open_fd_range(int fd, sqfs_u64 offset, sqfs_u64 size)
{
    range_file_t *file = calloc(1, sizeof(*file));
    if (file == NULL)
        return NULL;
    file->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (file->fd < 0) {
        free(file);
        return NULL;
    }
    file->offset = offset;
    file->size = size;
    file->base.base.destroy = range_destroy;
    file->base.base.copy = NULL;
    file->base.read_at = range_read_at;
    file->base.write_at = range_write_at;
    file->base.get_size = range_get_size;
    file->base.truncate = range_truncate;
    return (sqfs_file_t *)file;
}
