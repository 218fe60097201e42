/*
 * rds_mysql.h - the MariaDB client API through dlopen (plugin-private).
 *
 * logship is not linked with libmariadb, so processes that harvest no
 * database do not map it (and the libssl it needs). Include this instead of
 * <mysql.h>: the call sites keep their names, and the macros below send each
 * call through the table that rds_mysql_load() fills in the plugin's init.
 * A function missing from RDS_MYSQL_FUNCS fails at link time, not at run time.
 */
#ifndef LS_RDS_MYSQL_H
#define LS_RDS_MYSQL_H

#include <mysql.h>
#include <mysqld_error.h>

/* mysql_library_init is mysql.h's macro for mysql_server_init */
#define RDS_MYSQL_FUNCS(X) \
    X(mysql_server_init) X(mysql_init) X(mysql_optionsv) X(mysql_real_connect) X(mysql_ping) \
    X(mysql_close) X(mysql_error) X(mysql_errno) X(mysql_real_escape_string) \
    X(mysql_real_query) X(mysql_store_result) X(mysql_use_result) X(mysql_next_result) \
    X(mysql_fetch_row) X(mysql_fetch_lengths) X(mysql_fetch_fields) X(mysql_num_fields) \
    X(mysql_free_result)

struct rds_mysql_api {
#define RDS_MYSQL_MEMBER(f) __typeof__(f) *f##_p;
    RDS_MYSQL_FUNCS(RDS_MYSQL_MEMBER)
#undef RDS_MYSQL_MEMBER
};

extern struct rds_mysql_api rds_mysql;

/* LS_OK, or LS_ERROR with "cannot load libmariadb.so.3 (...)" in err. Any thread. */
int rds_mysql_load(char *err, size_t errlen);

#define mysql_server_init(...)          rds_mysql.mysql_server_init_p(__VA_ARGS__)
#define mysql_init(...)                 rds_mysql.mysql_init_p(__VA_ARGS__)
#define mysql_optionsv(...)             rds_mysql.mysql_optionsv_p(__VA_ARGS__)
#define mysql_real_connect(...)         rds_mysql.mysql_real_connect_p(__VA_ARGS__)
#define mysql_ping(...)                 rds_mysql.mysql_ping_p(__VA_ARGS__)
#define mysql_close(...)                rds_mysql.mysql_close_p(__VA_ARGS__)
#define mysql_error(...)                rds_mysql.mysql_error_p(__VA_ARGS__)
#define mysql_errno(...)                rds_mysql.mysql_errno_p(__VA_ARGS__)
#define mysql_real_escape_string(...)   rds_mysql.mysql_real_escape_string_p(__VA_ARGS__)
#define mysql_real_query(...)           rds_mysql.mysql_real_query_p(__VA_ARGS__)
#define mysql_store_result(...)         rds_mysql.mysql_store_result_p(__VA_ARGS__)
#define mysql_use_result(...)           rds_mysql.mysql_use_result_p(__VA_ARGS__)
#define mysql_next_result(...)          rds_mysql.mysql_next_result_p(__VA_ARGS__)
#define mysql_fetch_row(...)            rds_mysql.mysql_fetch_row_p(__VA_ARGS__)
#define mysql_fetch_lengths(...)        rds_mysql.mysql_fetch_lengths_p(__VA_ARGS__)
#define mysql_fetch_fields(...)         rds_mysql.mysql_fetch_fields_p(__VA_ARGS__)
#define mysql_num_fields(...)           rds_mysql.mysql_num_fields_p(__VA_ARGS__)
#define mysql_free_result(...)          rds_mysql.mysql_free_result_p(__VA_ARGS__)

#endif
