/*
 * rds_mysql.c - the table behind rds_mysql.h.
 */
#include "common.h"
#include "dynlib.h"
#include "rds_mysql.h"

struct rds_mysql_api rds_mysql;

static const struct ls_dynsym rds_mysql_syms[] = {
#define RDS_MYSQL_SYM(f) { #f, offsetof(struct rds_mysql_api, f##_p) },
    RDS_MYSQL_FUNCS(RDS_MYSQL_SYM)
#undef RDS_MYSQL_SYM
};

/* the SONAME of the ABI mysql.h describes; Debian ships it in libmariadb3 */
static struct ls_dynlib rds_mysql_lib = {
    .soname = "libmariadb.so.3",
    .package = "libmariadb3",
    .syms = rds_mysql_syms,
    .nsyms = LS_ARRAY_LEN(rds_mysql_syms),
    .table = &rds_mysql,
};

int rds_mysql_load(char *err, size_t errlen)
{
    return ls_dynlib_load(&rds_mysql_lib, err, errlen);
}
