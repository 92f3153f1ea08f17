// libsquashfs (squashfs-tools-ng 1.2), the squashfs writer library.
// Only the SquashfsWriter module imports this.
#include <sqfs/predef.h>
#include <sqfs/io.h>
#include <sqfs/super.h>
#include <sqfs/compressor.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/dir_writer.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/meta_writer.h>
#include <sqfs/xattr_writer.h>
#include <sqfs/frag_table.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir_reader.h>
#include <sqfs/xattr_reader.h>
#include <sqfs/xattr.h>
#include <sqfs/error.h>
