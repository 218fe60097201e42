/*
 * fwd_ssl.h - the libssl functions out_forward's TLS client calls, loaded with dlopen when
 * `transport tls` is configured (fw_ssl_load), so an agent without TLS maps no TLS library
 * (test_http_helper), as in_forward does. libcrypto (digests, ERR_*, X509 checks) stays
 * linked. The macros send each SSL_* call of fwd_net.c, including OpenSSL's own macros that
 * expand to SSL_CTX_ctrl / SSL_ctrl, through the loaded table.
 */
#ifndef LS_FWD_SSL_H
#define LS_FWD_SSL_H

#include <openssl/ssl.h>

#define FW_SSL_FUNCS(X) \
    X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) \
    X(SSL_CTX_set_cipher_list) X(SSL_CTX_set_verify) X(SSL_CTX_load_verify_locations) \
    X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_set_default_passwd_cb) \
    X(SSL_CTX_set_default_passwd_cb_userdata) X(SSL_CTX_use_certificate_chain_file) \
    X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_check_private_key) X(SSL_new) X(SSL_free) \
    X(SSL_set_fd) X(SSL_ctrl) X(SSL_set1_host) X(SSL_get0_param) X(SSL_connect) X(SSL_read) \
    X(SSL_write) X(SSL_get_error) X(SSL_get_verify_result)

struct fw_ssl_api {
#define FW_SSL_MEMBER(f) __typeof__(f) *f##_p;
    FW_SSL_FUNCS(FW_SSL_MEMBER)
#undef FW_SSL_MEMBER
};

extern struct fw_ssl_api fw_ssl;

/* LS_OK, or LS_ERROR with "cannot load libssl.so.3 (...)" in err. */
int fw_ssl_load(char *err, size_t errlen);

#define TLS_client_method(...)            fw_ssl.TLS_client_method_p(__VA_ARGS__)
#define SSL_CTX_new(...)                  fw_ssl.SSL_CTX_new_p(__VA_ARGS__)
#define SSL_CTX_free(...)                 fw_ssl.SSL_CTX_free_p(__VA_ARGS__)
#define SSL_CTX_ctrl(...)                 fw_ssl.SSL_CTX_ctrl_p(__VA_ARGS__)
#define SSL_CTX_set_cipher_list(...)      fw_ssl.SSL_CTX_set_cipher_list_p(__VA_ARGS__)
#define SSL_CTX_set_verify(...)           fw_ssl.SSL_CTX_set_verify_p(__VA_ARGS__)
#define SSL_CTX_load_verify_locations(...) fw_ssl.SSL_CTX_load_verify_locations_p(__VA_ARGS__)
#define SSL_CTX_set_default_verify_paths(...) \
    fw_ssl.SSL_CTX_set_default_verify_paths_p(__VA_ARGS__)
#define SSL_CTX_set_default_passwd_cb(...) fw_ssl.SSL_CTX_set_default_passwd_cb_p(__VA_ARGS__)
#define SSL_CTX_set_default_passwd_cb_userdata(...) \
    fw_ssl.SSL_CTX_set_default_passwd_cb_userdata_p(__VA_ARGS__)
#define SSL_CTX_use_certificate_chain_file(...) \
    fw_ssl.SSL_CTX_use_certificate_chain_file_p(__VA_ARGS__)
#define SSL_CTX_use_PrivateKey_file(...)  fw_ssl.SSL_CTX_use_PrivateKey_file_p(__VA_ARGS__)
#define SSL_CTX_check_private_key(...)    fw_ssl.SSL_CTX_check_private_key_p(__VA_ARGS__)
#define SSL_new(...)                      fw_ssl.SSL_new_p(__VA_ARGS__)
#define SSL_free(...)                     fw_ssl.SSL_free_p(__VA_ARGS__)
#define SSL_set_fd(...)                   fw_ssl.SSL_set_fd_p(__VA_ARGS__)
#define SSL_ctrl(...)                     fw_ssl.SSL_ctrl_p(__VA_ARGS__)
#define SSL_set1_host(...)                fw_ssl.SSL_set1_host_p(__VA_ARGS__)
#define SSL_get0_param(...)               fw_ssl.SSL_get0_param_p(__VA_ARGS__)
#define SSL_connect(...)                  fw_ssl.SSL_connect_p(__VA_ARGS__)
#define SSL_read(...)                     fw_ssl.SSL_read_p(__VA_ARGS__)
#define SSL_write(...)                    fw_ssl.SSL_write_p(__VA_ARGS__)
#define SSL_get_error(...)                fw_ssl.SSL_get_error_p(__VA_ARGS__)
#define SSL_get_verify_result(...)        fw_ssl.SSL_get_verify_result_p(__VA_ARGS__)

#endif
