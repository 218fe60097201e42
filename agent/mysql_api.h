/*
 * mysql_api.h - the MariaDB client API through dlopen (rds_slowlog, mysql outputs).
 *
 * logship is not linked with libmariadb, so processes that harvest no
 * database do not map it (and the libssl it needs). Include this instead of
 * <mysql.h>: the call sites keep their names, and the macros below send each
 * call through the table that ls_mysql_load() fills in the plugin's init.
 * A function missing from LS_MYSQL_FUNCS fails at link time, not at run time.
 */
#ifndef LS_MYSQL_API_H
#define LS_MYSQL_API_H

#include <mysql.h>
#include <mysqld_error.h>

/* mysql_library_init is mysql.h's macro for mysql_server_init */
#define LS_MYSQL_FUNCS(X) \
    X(mysql_server_init) X(mysql_init) X(mysql_optionsv) X(mysql_real_connect) X(mysql_ping) \
    X(mysql_close) X(mysql_error) X(mysql_errno) X(mysql_real_escape_string) \
    X(mysql_real_query) X(mysql_store_result) X(mysql_use_result) X(mysql_next_result) \
    X(mysql_fetch_row) X(mysql_fetch_lengths) X(mysql_fetch_fields) X(mysql_num_fields) \
    X(mysql_free_result)

struct ls_mysql_api {
#define LS_MYSQL_MEMBER(f) __typeof__(f) *f##_p;
    LS_MYSQL_FUNCS(LS_MYSQL_MEMBER)
#undef LS_MYSQL_MEMBER
};

extern struct ls_mysql_api ls_mysql;

/* LS_OK, or LS_ERROR with "cannot load libmariadb.so.3 (...)" in err. Any thread. */
int ls_mysql_load(char *err, size_t errlen);

#define mysql_server_init(...)          ls_mysql.mysql_server_init_p(__VA_ARGS__)
#define mysql_init(...)                 ls_mysql.mysql_init_p(__VA_ARGS__)
#define mysql_optionsv(...)             ls_mysql.mysql_optionsv_p(__VA_ARGS__)
#define mysql_real_connect(...)         ls_mysql.mysql_real_connect_p(__VA_ARGS__)
#define mysql_ping(...)                 ls_mysql.mysql_ping_p(__VA_ARGS__)
#define mysql_close(...)                ls_mysql.mysql_close_p(__VA_ARGS__)
#define mysql_error(...)                ls_mysql.mysql_error_p(__VA_ARGS__)
#define mysql_errno(...)                ls_mysql.mysql_errno_p(__VA_ARGS__)
#define mysql_real_escape_string(...)   ls_mysql.mysql_real_escape_string_p(__VA_ARGS__)
#define mysql_real_query(...)           ls_mysql.mysql_real_query_p(__VA_ARGS__)
#define mysql_store_result(...)         ls_mysql.mysql_store_result_p(__VA_ARGS__)
#define mysql_use_result(...)           ls_mysql.mysql_use_result_p(__VA_ARGS__)
#define mysql_next_result(...)          ls_mysql.mysql_next_result_p(__VA_ARGS__)
#define mysql_fetch_row(...)            ls_mysql.mysql_fetch_row_p(__VA_ARGS__)
#define mysql_fetch_lengths(...)        ls_mysql.mysql_fetch_lengths_p(__VA_ARGS__)
#define mysql_fetch_fields(...)         ls_mysql.mysql_fetch_fields_p(__VA_ARGS__)
#define mysql_num_fields(...)           ls_mysql.mysql_num_fields_p(__VA_ARGS__)
#define mysql_free_result(...)          ls_mysql.mysql_free_result_p(__VA_ARGS__)

#endif
