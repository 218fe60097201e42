/*
 * ssl_api.c - the libssl function table (see ssl_api.h).
 */
#include "common.h"
#include "dynlib.h"
#include "ssl_api.h"

struct ssl_api ssl_api;

static const struct ls_dynsym ssl_api_syms[] = {
#define SSL_API_SYM(f) { #f, offsetof(struct ssl_api, f##_p) },
    SSL_API_FUNCS(SSL_API_SYM)
#undef SSL_API_SYM
};

/* the SONAME of the ABI openssl/ssl.h describes; Debian ships it in libssl3 */
static struct ls_dynlib ssl_api_lib = {
    .soname = "libssl.so.3",
    .package = "libssl3",
    .syms = ssl_api_syms,
    .nsyms = LS_ARRAY_LEN(ssl_api_syms),
    .table = &ssl_api,
};

int ssl_api_load(char *err, size_t errlen)
{
    return ls_dynlib_load(&ssl_api_lib, err, errlen);
}
