/*
 * ssl_api.h - libssl, loaded with dlopen when a <transport tls> is configured (in_forward's
 * server, out_forward's client).
 *
 * The agent maps no TLS library unless a configuration asks for TLS (its S3 uploads use TLS
 * in the logship-http helper process), as with libmariadb and libmicrohttpd (dynlib.h).
 * libcrypto stays linked: the handshake's SHA-512, X509 checks and ERR_* come from it. The
 * macros below send every SSL_* call a plugin makes (OpenSSL's own macros such as
 * SSL_CTX_set_min_proto_version expand to SSL_CTX_ctrl / SSL_ctrl) through the loaded table.
 */
#ifndef LS_SSL_API_H
#define LS_SSL_API_H

#include <openssl/ssl.h>

#define SSL_API_FUNCS(X) \
    X(TLS_server_method) X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) \
    X(SSL_CTX_set_cipher_list) X(SSL_CTX_set_default_passwd_cb) \
    X(SSL_CTX_set_default_passwd_cb_userdata) X(SSL_CTX_use_certificate_chain_file) \
    X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_check_private_key) X(SSL_CTX_use_certificate) \
    X(SSL_CTX_use_PrivateKey) \
    X(SSL_CTX_load_verify_locations) X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_set_verify) \
    X(SSL_new) X(SSL_free) X(SSL_set_fd) X(SSL_ctrl) X(SSL_set1_host) X(SSL_get0_param) \
    X(SSL_accept) X(SSL_connect) X(SSL_read) X(SSL_write) X(SSL_get_error) X(SSL_pending) \
    X(SSL_get_verify_result) X(SSL_shutdown) X(SSL_CTX_set_num_tickets)

struct ssl_api {
#define SSL_API_MEMBER(f) __typeof__(f) *f##_p;
    SSL_API_FUNCS(SSL_API_MEMBER)
#undef SSL_API_MEMBER
};

extern struct ssl_api ssl_api;

/* LS_OK, or LS_ERROR with "cannot load libssl.so.3 (...)" in err. */
int ssl_api_load(char *err, size_t errlen);

#define TLS_server_method(...) ssl_api.TLS_server_method_p(__VA_ARGS__)
#define TLS_client_method(...) ssl_api.TLS_client_method_p(__VA_ARGS__)
#define SSL_CTX_new(...) ssl_api.SSL_CTX_new_p(__VA_ARGS__)
#define SSL_CTX_free(...) ssl_api.SSL_CTX_free_p(__VA_ARGS__)
#define SSL_CTX_ctrl(...) ssl_api.SSL_CTX_ctrl_p(__VA_ARGS__)
#define SSL_CTX_set_cipher_list(...) ssl_api.SSL_CTX_set_cipher_list_p(__VA_ARGS__)
#define SSL_CTX_set_default_passwd_cb(...) ssl_api.SSL_CTX_set_default_passwd_cb_p(__VA_ARGS__)
#define SSL_CTX_set_default_passwd_cb_userdata(...) ssl_api.SSL_CTX_set_default_passwd_cb_userdata_p(__VA_ARGS__)
#define SSL_CTX_use_certificate_chain_file(...) ssl_api.SSL_CTX_use_certificate_chain_file_p(__VA_ARGS__)
#define SSL_CTX_use_PrivateKey_file(...) ssl_api.SSL_CTX_use_PrivateKey_file_p(__VA_ARGS__)
#define SSL_CTX_check_private_key(...) ssl_api.SSL_CTX_check_private_key_p(__VA_ARGS__)
#define SSL_CTX_use_certificate(...) ssl_api.SSL_CTX_use_certificate_p(__VA_ARGS__)
#define SSL_shutdown(...) ssl_api.SSL_shutdown_p(__VA_ARGS__)
#define SSL_CTX_set_num_tickets(...) ssl_api.SSL_CTX_set_num_tickets_p(__VA_ARGS__)
#define SSL_CTX_use_PrivateKey(...) ssl_api.SSL_CTX_use_PrivateKey_p(__VA_ARGS__)
#define SSL_CTX_load_verify_locations(...) ssl_api.SSL_CTX_load_verify_locations_p(__VA_ARGS__)
#define SSL_CTX_set_default_verify_paths(...) ssl_api.SSL_CTX_set_default_verify_paths_p(__VA_ARGS__)
#define SSL_CTX_set_verify(...) ssl_api.SSL_CTX_set_verify_p(__VA_ARGS__)
#define SSL_new(...) ssl_api.SSL_new_p(__VA_ARGS__)
#define SSL_free(...) ssl_api.SSL_free_p(__VA_ARGS__)
#define SSL_set_fd(...) ssl_api.SSL_set_fd_p(__VA_ARGS__)
#define SSL_ctrl(...) ssl_api.SSL_ctrl_p(__VA_ARGS__)
#define SSL_set1_host(...) ssl_api.SSL_set1_host_p(__VA_ARGS__)
#define SSL_get0_param(...) ssl_api.SSL_get0_param_p(__VA_ARGS__)
#define SSL_accept(...) ssl_api.SSL_accept_p(__VA_ARGS__)
#define SSL_connect(...) ssl_api.SSL_connect_p(__VA_ARGS__)
#define SSL_read(...) ssl_api.SSL_read_p(__VA_ARGS__)
#define SSL_write(...) ssl_api.SSL_write_p(__VA_ARGS__)
#define SSL_get_error(...) ssl_api.SSL_get_error_p(__VA_ARGS__)
#define SSL_pending(...) ssl_api.SSL_pending_p(__VA_ARGS__)
#define SSL_get_verify_result(...) ssl_api.SSL_get_verify_result_p(__VA_ARGS__)

#endif
