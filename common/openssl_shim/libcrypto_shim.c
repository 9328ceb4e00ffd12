/* The "libcrypto.so" civetweb 1.15 dlopens next to "libssl.so" (see libssl_shim.c): an object
 * with that SONAME whose dependency is the real libcrypto.so.3. */
#include <openssl/crypto.h>

/* Referenced by common/http_server.cc so the linker records this library as needed. */
unsigned long slotguard_libcrypto_shim(void);
unsigned long slotguard_libcrypto_shim(void) { return OpenSSL_version_num(); }
