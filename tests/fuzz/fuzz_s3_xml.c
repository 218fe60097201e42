/*
 * fuzz_s3_xml.c - libFuzzer target for the out_s3 XML readers (and the key
 * encoding shared by the URL and the signer).
 *
 * Every input goes through each parser (error, initiate, complete, list,
 * list-parts, STS credentials); results are released so ASan sees leaks.
 * Invariants: a parsed ListParts result rebuilds into a CompleteMultipartUpload
 * body that is well-formed XML; an Error found by the complete-parser has a
 * code. Inputs are also used as an object key: the path in the URL must be
 * exactly the canonical URI the signer computed. The input is copied to an
 * exact-size heap block so reads past the end are caught.
 */
#include "../../plugins/out_s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const char *p, size_t size)
{
    if (size == 0 || size > 512 || memchr(p, '\0', size)) {
        return;
    }
    char *key = ls_strndup(p, size);
    struct s3_addr a;
    if (s3_addr_init(&a, "http://127.0.0.1:9000", NULL, "bkt", false, NULL, 0) != LS_OK) {
        abort();
    }
    char *path = s3_addr_path(&a, key);
    char *url = s3_addr_url(&a, key, NULL, 0);
    struct aws_kv h[] = { { "Host", a.host } };
    struct aws_request r = { .method = "PUT", .path = path, .headers = h, .nheaders = 1 };
    struct aws_creds c = { .key = "AKID", .secret = "secret" };
    struct aws_signed s;
    if (aws_sigv4_sign(&r, &c, "us-east-1", "s3", 0, AWS_SIGV4_CONTENT_SHA, NULL, &s) != LS_OK) {
        abort();
    }
    /* canonical URI = second line of the canonical request = URL path */
    const char *l2 = strchr(s.canonical_request, '\n') + 1;
    size_t l2len = (size_t)(strchr(l2, '\n') - l2);
    const char *upath = url + strlen("http://127.0.0.1:9000");
    if (strlen(upath) != l2len || memcmp(upath, l2, l2len) != 0) {
        abort();
    }
    aws_signed_release(&s);
    ls_free(path);
    ls_free(url);
    s3_addr_release(&a);
    ls_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = ls_malloc(size ? size : 1);
    memcpy(p, data, size);
    s3_xml_global_init();

    struct s3_xml_error e = { 0 };
    s3_xml_parse_error(p, size, &e);
    s3_xml_error_release(&e);

    char *id = NULL;
    if (s3_xml_parse_initiate(p, size, &id, &e) == LS_OK && (id == NULL || id[0] == '\0')) {
        abort();
    }
    ls_free(id);
    s3_xml_error_release(&e);

    char *etag = NULL;
    s3_xml_parse_complete(p, size, &etag, &e);
    ls_free(etag);
    s3_xml_error_release(&e);

    struct s3_list_result lr;
    s3_xml_parse_list(p, size, &lr, &e);
    s3_list_result_release(&lr);
    s3_xml_error_release(&e);

    struct s3_parts parts;
    if (s3_xml_parse_parts(p, size, &parts, &e) == LS_OK && parts.n > 0) {
        struct ls_buf b;
        ls_buf_init(&b, 0);
        for (size_t i = 0; i < parts.n; i++) {
            if (parts.parts[i].etag == NULL) {
                parts.parts[i].etag = ls_strdup("");
            }
        }
        if (s3_xml_build_complete(&b, parts.parts, parts.n) != LS_OK) {
            abort();
        }
        struct s3_xml_error e2 = { 0 };
        /* ETags come from XML text, so may hold any decoded char except NUL: rebuilt body must still parse */
        int rc = s3_xml_parse_error(b.p, b.len, &e2);
        if (rc != LS_DECLINED) {
            abort();
        }
        s3_xml_error_release(&e2);
        ls_buf_release(&b);
    }
    s3_parts_release(&parts);
    s3_xml_error_release(&e);

    struct aws_creds c;
    if (s3_xml_parse_sts_creds(p, size, &c, &e) == LS_OK) {
        if (c.key == NULL || c.secret == NULL) {
            abort();
        }
        aws_creds_release(&c);
    }
    s3_xml_error_release(&e);

    check_key(p, size);
    ls_free(p);
    return 0;
}
