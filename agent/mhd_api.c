/*
 * mhd_api.c - the table behind mhd_api.h.
 */
#include "common.h"
#include "dynlib.h"
#include "mhd_api.h"

struct mhd_api mhd_api;

static const struct ls_dynsym mhd_api_syms[] = {
#define MHD_API_SYM(f) { #f, offsetof(struct mhd_api, f##_p) },
    MHD_API_FUNCS(MHD_API_SYM)
#undef MHD_API_SYM
};

/* the SONAME of the ABI microhttpd.h describes; Debian ships it in libmicrohttpd12 */
static struct ls_dynlib mhd_api_lib = {
    .soname = "libmicrohttpd.so.12",
    .package = "libmicrohttpd12",
    .syms = mhd_api_syms,
    .nsyms = LS_ARRAY_LEN(mhd_api_syms),
    .table = &mhd_api,
};

int mhd_api_load(char *err, size_t errlen)
{
    return ls_dynlib_load(&mhd_api_lib, err, errlen);
}
