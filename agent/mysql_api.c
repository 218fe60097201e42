/*
 * mysql_api.c - the table behind mysql_api.h.
 */
#include "common.h"
#include "dynlib.h"
#include "mysql_api.h"

struct ls_mysql_api ls_mysql;

static const struct ls_dynsym ls_mysql_syms[] = {
#define LS_MYSQL_SYM(f) { #f, offsetof(struct ls_mysql_api, f##_p) },
    LS_MYSQL_FUNCS(LS_MYSQL_SYM)
#undef LS_MYSQL_SYM
};

/* the SONAME of the ABI mysql.h describes; Debian ships it in libmariadb3 */
static struct ls_dynlib ls_mysql_lib = {
    .soname = "libmariadb.so.3",
    .package = "libmariadb3",
    .syms = ls_mysql_syms,
    .nsyms = LS_ARRAY_LEN(ls_mysql_syms),
    .table = &ls_mysql,
};

int ls_mysql_load(char *err, size_t errlen)
{
    return ls_dynlib_load(&ls_mysql_lib, err, errlen);
}
