// OpenSSL libcrypto: SHA-256 (EVP) for fs-verity and dm-verity hashing.
// Only the Verity module imports this.
#include <openssl/evp.h>
#include <openssl/sha.h>
