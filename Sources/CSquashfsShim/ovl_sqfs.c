#include "ovl_sqfs.h"
#include <stdlib.h>
#include <string.h>

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
