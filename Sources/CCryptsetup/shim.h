// libcryptsetup: dm-verity hash tree formatting (works on plain files, no device-mapper).
// Only the Verity module imports this.
#include <libcryptsetup.h>
