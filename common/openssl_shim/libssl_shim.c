/* Debian bookworm's civetweb 1.15 loads OpenSSL at run time with dlopen("libssl.so") and
 * dlsym, and wants SSL_get_peer_certificate, which OpenSSL 3 only has as a macro for
 * SSL_get1_peer_certificate: its TLS fails with "cannot find SSL_get_peer_certificate".
 * This library, whose SONAME is "libssl.so", is linked into both binaries: glibc hands it
 * to civetweb's dlopen (an object already loaded under that SONAME), and dlsym finds every
 * other symbol in its dependency, the real libssl.so.3. It also means no libssl-dev on the
 * hosts for the unversioned name. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509* SSL_get_peer_certificate(const SSL* ssl);
X509* SSL_get_peer_certificate(const SSL* ssl) { return SSL_get1_peer_certificate(ssl); }

/* Referenced by common/http_server.cc so the linker records this library as needed. */
int slotguard_libssl_shim(void);
int slotguard_libssl_shim(void) { return 1; }
