/*
 * mongo_api.h - libmongoc and libbson through dlopen (the mongo output).
 *
 * logship is not linked with libmongoc (and the TLS, SASL and compression libraries it
 * pulls in), so only agents with a mongo output map it (agent/dynlib.h). Include this
 * instead of <mongoc/mongoc.h>: the call sites keep their names and go through the table
 * that ls_mongo_load() fills. dlsym on libmongoc's handle also finds libbson's functions,
 * which it links.
 */
#ifndef LS_MONGO_API_H
#define LS_MONGO_API_H

#include <mongoc/mongoc.h>

#define LS_MONGO_FUNCS(X) \
    X(mongoc_init) X(mongoc_log_set_handler) X(mongoc_uri_new_with_error) X(mongoc_uri_destroy) \
    X(mongoc_uri_set_username) X(mongoc_uri_set_password) X(mongoc_uri_set_auth_source) \
    X(mongoc_uri_set_auth_mechanism) X(mongoc_uri_set_database) X(mongoc_uri_get_database) \
    X(mongoc_uri_set_option_as_bool) X(mongoc_uri_set_option_as_int32) \
    X(mongoc_uri_set_option_as_utf8) X(mongoc_client_pool_new) X(mongoc_client_pool_destroy) \
    X(mongoc_client_pool_pop) X(mongoc_client_pool_push) X(mongoc_client_pool_set_error_api) \
    X(mongoc_client_pool_set_appname) X(mongoc_client_get_collection) \
    X(mongoc_client_get_database) X(mongoc_collection_destroy) X(mongoc_database_destroy) \
    X(mongoc_collection_insert_many) X(mongoc_database_has_collection) \
    X(mongoc_database_create_collection) X(mongoc_database_write_command_with_opts) \
    X(bson_new) X(bson_destroy) X(bson_init) X(bson_append_utf8) X(bson_append_int32) \
    X(bson_append_int64) X(bson_append_double) X(bson_append_bool) X(bson_append_null) \
    X(bson_append_date_time) X(bson_append_oid) X(bson_append_document_begin) \
    X(bson_append_document_end) X(bson_append_array_begin) X(bson_append_array_end) \
    X(bson_append_decimal128) X(bson_decimal128_from_string) X(bson_oid_init_from_data) \
    X(bson_oid_init_from_string) X(bson_oid_is_valid) X(bson_iter_init) X(bson_iter_init_find) \
    X(bson_iter_next) X(bson_iter_key) X(bson_iter_type) X(bson_iter_int32) X(bson_iter_int64) \
    X(bson_iter_utf8) X(bson_iter_recurse) X(bson_iter_find) X(bson_has_field)

struct ls_mongo_api {
#define LS_MONGO_MEMBER(f) __typeof__(f) *f##_p;
    LS_MONGO_FUNCS(LS_MONGO_MEMBER)
#undef LS_MONGO_MEMBER
};

extern struct ls_mongo_api ls_mongo;

/* LS_OK, or LS_ERROR with "cannot load libmongoc-1.0.so.0 (...)" in err. Any thread. */
int ls_mongo_load(char *err, size_t errlen);

#define mongoc_init(...)                     ls_mongo.mongoc_init_p(__VA_ARGS__)
#define mongoc_log_set_handler(...)          ls_mongo.mongoc_log_set_handler_p(__VA_ARGS__)
#define mongoc_uri_new_with_error(...)       ls_mongo.mongoc_uri_new_with_error_p(__VA_ARGS__)
#define mongoc_uri_destroy(...)              ls_mongo.mongoc_uri_destroy_p(__VA_ARGS__)
#define mongoc_uri_set_username(...)         ls_mongo.mongoc_uri_set_username_p(__VA_ARGS__)
#define mongoc_uri_set_password(...)         ls_mongo.mongoc_uri_set_password_p(__VA_ARGS__)
#define mongoc_uri_set_auth_source(...)      ls_mongo.mongoc_uri_set_auth_source_p(__VA_ARGS__)
#define mongoc_uri_set_auth_mechanism(...)   ls_mongo.mongoc_uri_set_auth_mechanism_p(__VA_ARGS__)
#define mongoc_uri_set_database(...)         ls_mongo.mongoc_uri_set_database_p(__VA_ARGS__)
#define mongoc_uri_get_database(...)         ls_mongo.mongoc_uri_get_database_p(__VA_ARGS__)
#define mongoc_uri_set_option_as_bool(...)   ls_mongo.mongoc_uri_set_option_as_bool_p(__VA_ARGS__)
#define mongoc_uri_set_option_as_int32(...)  ls_mongo.mongoc_uri_set_option_as_int32_p(__VA_ARGS__)
#define mongoc_uri_set_option_as_utf8(...)   ls_mongo.mongoc_uri_set_option_as_utf8_p(__VA_ARGS__)
#define mongoc_client_pool_new(...)          ls_mongo.mongoc_client_pool_new_p(__VA_ARGS__)
#define mongoc_client_pool_destroy(...)      ls_mongo.mongoc_client_pool_destroy_p(__VA_ARGS__)
#define mongoc_client_pool_pop(...)          ls_mongo.mongoc_client_pool_pop_p(__VA_ARGS__)
#define mongoc_client_pool_push(...)         ls_mongo.mongoc_client_pool_push_p(__VA_ARGS__)
#define mongoc_client_pool_set_error_api(...) ls_mongo.mongoc_client_pool_set_error_api_p(__VA_ARGS__)
#define mongoc_client_pool_set_appname(...)  ls_mongo.mongoc_client_pool_set_appname_p(__VA_ARGS__)
#define mongoc_client_get_collection(...)    ls_mongo.mongoc_client_get_collection_p(__VA_ARGS__)
#define mongoc_client_get_database(...)      ls_mongo.mongoc_client_get_database_p(__VA_ARGS__)
#define mongoc_collection_destroy(...)       ls_mongo.mongoc_collection_destroy_p(__VA_ARGS__)
#define mongoc_database_destroy(...)         ls_mongo.mongoc_database_destroy_p(__VA_ARGS__)
#define mongoc_collection_insert_many(...)   ls_mongo.mongoc_collection_insert_many_p(__VA_ARGS__)
#define mongoc_database_has_collection(...)  ls_mongo.mongoc_database_has_collection_p(__VA_ARGS__)
#define mongoc_database_create_collection(...) ls_mongo.mongoc_database_create_collection_p(__VA_ARGS__)
#define mongoc_database_write_command_with_opts(...) \
    ls_mongo.mongoc_database_write_command_with_opts_p(__VA_ARGS__)
#define bson_new(...)                        ls_mongo.bson_new_p(__VA_ARGS__)
#define bson_destroy(...)                    ls_mongo.bson_destroy_p(__VA_ARGS__)
#define bson_init(...)                       ls_mongo.bson_init_p(__VA_ARGS__)
#define bson_append_utf8(...)                ls_mongo.bson_append_utf8_p(__VA_ARGS__)
#define bson_append_int32(...)               ls_mongo.bson_append_int32_p(__VA_ARGS__)
#define bson_append_int64(...)               ls_mongo.bson_append_int64_p(__VA_ARGS__)
#define bson_append_double(...)              ls_mongo.bson_append_double_p(__VA_ARGS__)
#define bson_append_bool(...)                ls_mongo.bson_append_bool_p(__VA_ARGS__)
#define bson_append_null(...)                ls_mongo.bson_append_null_p(__VA_ARGS__)
#define bson_append_date_time(...)           ls_mongo.bson_append_date_time_p(__VA_ARGS__)
#define bson_append_oid(...)                 ls_mongo.bson_append_oid_p(__VA_ARGS__)
#define bson_append_document_begin(...)      ls_mongo.bson_append_document_begin_p(__VA_ARGS__)
#define bson_append_document_end(...)        ls_mongo.bson_append_document_end_p(__VA_ARGS__)
#define bson_append_array_begin(...)         ls_mongo.bson_append_array_begin_p(__VA_ARGS__)
#define bson_append_array_end(...)           ls_mongo.bson_append_array_end_p(__VA_ARGS__)
#define bson_append_decimal128(...)          ls_mongo.bson_append_decimal128_p(__VA_ARGS__)
#define bson_decimal128_from_string(...)     ls_mongo.bson_decimal128_from_string_p(__VA_ARGS__)
#define bson_oid_init_from_data(...)         ls_mongo.bson_oid_init_from_data_p(__VA_ARGS__)
#define bson_oid_init_from_string(...)       ls_mongo.bson_oid_init_from_string_p(__VA_ARGS__)
#define bson_oid_is_valid(...)               ls_mongo.bson_oid_is_valid_p(__VA_ARGS__)
#define bson_iter_init(...)                  ls_mongo.bson_iter_init_p(__VA_ARGS__)
#define bson_iter_init_find(...)             ls_mongo.bson_iter_init_find_p(__VA_ARGS__)
#define bson_iter_next(...)                  ls_mongo.bson_iter_next_p(__VA_ARGS__)
#define bson_iter_key(...)                   ls_mongo.bson_iter_key_p(__VA_ARGS__)
#define bson_iter_type(...)                  ls_mongo.bson_iter_type_p(__VA_ARGS__)
#define bson_iter_int32(...)                 ls_mongo.bson_iter_int32_p(__VA_ARGS__)
#define bson_iter_int64(...)                 ls_mongo.bson_iter_int64_p(__VA_ARGS__)
#define bson_iter_utf8(...)                  ls_mongo.bson_iter_utf8_p(__VA_ARGS__)
#define bson_iter_recurse(...)               ls_mongo.bson_iter_recurse_p(__VA_ARGS__)
#define bson_iter_find(...)                  ls_mongo.bson_iter_find_p(__VA_ARGS__)
#define bson_has_field(...)                  ls_mongo.bson_has_field_p(__VA_ARGS__)

#endif
