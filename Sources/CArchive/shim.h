// libarchive (tar formats, gzip/zstd/xz filters). Only the Archive module imports this.
#include <archive.h>
#include <archive_entry.h>
