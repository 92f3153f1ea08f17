// zlib, for reading gzip-compressed composefs dumps (`.dump.gz`).
// Only LinuxSys imports this module.
#include <zlib.h>
