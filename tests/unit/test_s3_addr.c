/*
 * test_s3_addr.c - endpoint parsing, region derivation and path/vhost choice.
 *
 * Expectations follow the AWS SDK rules fluent-plugin-s3 users rely on:
 * virtual-hosted by default, path style for IP/localhost endpoints,
 * non-DNS-compatible buckets, dotted buckets over https, or when forced.
 */
#include <check.h>

#include "../../plugins/out_s3/s3.h"

struct addr_case {
    const char *endpoint, *region, *bucket;
    bool force;
    const char *want_region, *want_host, *want_base, *want_path_key, *want_url_key;
    bool want_path_style;
};

static void check_case(const struct addr_case *c)
{
    struct s3_addr a;
    char err[256] = "";
    ck_assert_msg(s3_addr_init(&a, c->endpoint, c->region, c->bucket, c->force, err, sizeof(err)) == LS_OK,
                  "%s: %s", c->endpoint ? c->endpoint : "(null)", err);
    ck_assert_str_eq(a.region, c->want_region);
    ck_assert_str_eq(a.host, c->want_host);
    ck_assert_str_eq(a.base_url, c->want_base);
    ck_assert_int_eq(a.path_style, c->want_path_style);
    char *p = s3_addr_path(&a, "logs/a b+c~d%e/\xe6\x97\xa5.gz");
    ck_assert_str_eq(p, c->want_path_key);
    char *u = s3_addr_url(&a, "logs/a b+c~d%e/\xe6\x97\xa5.gz", NULL, 0);
    ck_assert_str_eq(u, c->want_url_key);
    ls_free(p);
    ls_free(u);
    s3_addr_release(&a);
}

START_TEST(minio_ip)
{
    struct addr_case c = { "http://127.0.0.1:9000", NULL, "logs", false, "us-east-1", "127.0.0.1:9000",
                           "http://127.0.0.1:9000/logs", "/logs/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                           "http://127.0.0.1:9000/logs/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", true };
    check_case(&c);
}
END_TEST

START_TEST(aws_regional_vhost)
{
    struct addr_case c = { "https://s3.ap-northeast-1.amazonaws.com", NULL, "my-logs", false, "ap-northeast-1",
                           "my-logs.s3.ap-northeast-1.amazonaws.com", "https://my-logs.s3.ap-northeast-1.amazonaws.com",
                           "/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                           "https://my-logs.s3.ap-northeast-1.amazonaws.com/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", false };
    check_case(&c);
}
END_TEST

START_TEST(schemeless_with_port)
{
    /* scheme-less => https; vhost for a plain DNS bucket on a named host */
    struct addr_case c = { "b.storage.sakura.ad.jp", "jp-north-1", "bkt", false, "jp-north-1",
                           "bkt.b.storage.sakura.ad.jp", "https://bkt.b.storage.sakura.ad.jp",
                           "/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                           "https://bkt.b.storage.sakura.ad.jp/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", false };
    check_case(&c);
    struct addr_case c2 = { "B.Storage.Sakura.ad.jp:8443", NULL, "bkt", false, "us-east-1",
                            "bkt.b.storage.sakura.ad.jp:8443", "https://bkt.b.storage.sakura.ad.jp:8443",
                            "/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                            "https://bkt.b.storage.sakura.ad.jp:8443/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", false };
    check_case(&c2);
    /* explicit default port is dropped (Host must match what curl/botocore send) */
    struct addr_case c3 = { "https://minio.example.com:443/", NULL, "bkt", true, "us-east-1",
                            "minio.example.com", "https://minio.example.com/bkt",
                            "/bkt/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                            "https://minio.example.com/bkt/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", true };
    check_case(&c3);
}
END_TEST

START_TEST(region_derivation)
{
    static const struct { const char *host, *region; } t[] = {
        { "s3.amazonaws.com", "us-east-1" },
        { "s3-external-1.amazonaws.com", "us-east-1" },
        { "s3.ap-northeast-1.amazonaws.com", "ap-northeast-1" },
        { "s3-ap-northeast-1.amazonaws.com", "ap-northeast-1" },
        { "s3-us-west-2.amazonaws.com", "us-west-2" },
        { "s3.dualstack.eu-west-1.amazonaws.com", "eu-west-1" },
        { "s3-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1" },
        { "S3.CN-North-1.amazonaws.com.cn", "cn-north-1" },
        { "bucket.vpce-1a2b3c4d-5e6f.s3.us-east-2.vpce.amazonaws.com", "us-east-2" },
    };
    for (size_t i = 0; i < LS_ARRAY_LEN(t); i++) {
        char *r = s3_region_from_host(t[i].host);
        ck_assert_msg(r && strcmp(r, t[i].region) == 0, "%s -> %s", t[i].host, r ? r : "(null)");
        ls_free(r);
    }
    ck_assert_ptr_null(s3_region_from_host("s3.isk01.sakurastorage.jp"));
    ck_assert_ptr_null(s3_region_from_host("127.0.0.1"));
    ck_assert_ptr_null(s3_region_from_host("ec2.amazonaws.com"));

    /* explicit region wins over the host */
    struct s3_addr a;
    ck_assert_int_eq(s3_addr_init(&a, "https://s3.ap-northeast-1.amazonaws.com", "us-west-2", "b-1", false, NULL, 0),
                     LS_OK);
    ck_assert_str_eq(a.region, "us-west-2");
    s3_addr_release(&a);
}
END_TEST

START_TEST(default_endpoint)
{
    struct addr_case c = { NULL, NULL, "my-logs", false, "us-east-1", "my-logs.s3.amazonaws.com",
                           "https://my-logs.s3.amazonaws.com", "/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                           "https://my-logs.s3.amazonaws.com/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", false };
    check_case(&c);
    struct addr_case c2 = { "", "ap-northeast-1", "my-logs", false, "ap-northeast-1",
                            "my-logs.s3.ap-northeast-1.amazonaws.com", "https://my-logs.s3.ap-northeast-1.amazonaws.com",
                            "/logs/a b+c~d%e/\xe6\x97\xa5.gz",
                            "https://my-logs.s3.ap-northeast-1.amazonaws.com/logs/a%20b%2Bc~d%25e/%E6%97%A5.gz", false };
    check_case(&c2);
    struct s3_addr a;
    ck_assert_int_eq(s3_addr_init(&a, NULL, "cn-northwest-1", "bb-b", false, NULL, 0), LS_OK);
    ck_assert_str_eq(a.host, "bb-b.s3.cn-northwest-1.amazonaws.com.cn");
    ck_assert(a.aws);
    s3_addr_release(&a);
}
END_TEST

START_TEST(path_style_rules)
{
    struct s3_addr a;
    /* dotted bucket over https: path style (wildcard certificate) */
    ck_assert_int_eq(s3_addr_init(&a, NULL, "us-west-2", "logs.example.com", false, NULL, 0), LS_OK);
    ck_assert(a.path_style);
    ck_assert_str_eq(a.host, "s3.us-west-2.amazonaws.com");
    ck_assert_str_eq(a.base_url, "https://s3.us-west-2.amazonaws.com/logs.example.com");
    s3_addr_release(&a);
    /* dotted bucket over http: vhost is fine */
    ck_assert_int_eq(s3_addr_init(&a, "http://s3.example.net", NULL, "logs.example.com", false, NULL, 0), LS_OK);
    ck_assert(!a.path_style);
    ck_assert_str_eq(a.host, "logs.example.com.s3.example.net");
    s3_addr_release(&a);
    /* not DNS-compatible: upper case, underscore, too short */
    const char *bad[] = { "MyBucket", "my_bucket", "ab", "-abc", "abc-", "a..b", "a.-b", "192.168.1.1" };
    for (size_t i = 0; i < LS_ARRAY_LEN(bad); i++) {
        ck_assert_msg(!s3_bucket_dns_compatible(bad[i]), "%s", bad[i]);
        ck_assert_int_eq(s3_addr_init(&a, NULL, NULL, bad[i], false, NULL, 0), LS_OK);
        ck_assert_msg(a.path_style, "%s", bad[i]);
        s3_addr_release(&a);
    }
    ck_assert(s3_bucket_dns_compatible("abc"));
    ck_assert(s3_bucket_dns_compatible("my.logs-2024"));
    /* forced */
    ck_assert_int_eq(s3_addr_init(&a, "https://s3.isk01.sakurastorage.jp", "jp-north-1", "bkt", true, NULL, 0),
                     LS_OK);
    ck_assert(a.path_style);
    ck_assert_str_eq(a.base_url, "https://s3.isk01.sakurastorage.jp/bkt");
    char *p = s3_addr_path(&a, NULL);
    ck_assert_str_eq(p, "/bkt");
    ls_free(p);
    char *r = s3_addr_resource(&a, "k");
    ck_assert_str_eq(r, "/bkt/k");
    ls_free(r);
    s3_addr_release(&a);
    /* localhost and IPv6 */
    ck_assert_int_eq(s3_addr_init(&a, "http://localhost:9000", NULL, "bkt", false, NULL, 0), LS_OK);
    ck_assert(a.path_style);
    ck_assert_str_eq(a.host, "localhost:9000");
    s3_addr_release(&a);
    ck_assert_int_eq(s3_addr_init(&a, "http://[::1]:9000", NULL, "bkt", false, NULL, 0), LS_OK);
    ck_assert(a.path_style);
    ck_assert_str_eq(a.host, "[::1]:9000");
    ck_assert_str_eq(a.base_url, "http://[::1]:9000/bkt");
    s3_addr_release(&a);
}
END_TEST

START_TEST(vhost_root_and_query)
{
    struct s3_addr a;
    ck_assert_int_eq(s3_addr_init(&a, NULL, "eu-west-1", "bkt", false, NULL, 0), LS_OK);
    char *p = s3_addr_path(&a, NULL);
    ck_assert_str_eq(p, "/");
    ls_free(p);
    char *r = s3_addr_resource(&a, NULL);
    ck_assert_str_eq(r, "/bkt/");
    ls_free(r);
    struct aws_kv q[] = { { "list-type", "2" }, { "prefix", "a b/" }, { "uploads", NULL } };
    char *u = s3_addr_url(&a, NULL, q, 3);
    ck_assert_str_eq(u, "https://bkt.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=a%20b%2F&uploads");
    ls_free(u);
    /* keys keep "//" and dot segments: S3 does not normalise */
    u = s3_addr_url(&a, "a//./../b", NULL, 0);
    ck_assert_str_eq(u, "https://bkt.s3.eu-west-1.amazonaws.com/a//./../b");
    ls_free(u);
    s3_addr_release(&a);
}
END_TEST

START_TEST(bad_endpoints)
{
    const char *bad[] = { "ftp://host", "http://", "http://host:0", "http://host:70000", "http://host:12a",
                          "http://user@host", "http://host/prefix", "http://[::1", "http://[zz]:1",
                          "http://ho st", "http://host?x=1" };
    for (size_t i = 0; i < LS_ARRAY_LEN(bad); i++) {
        struct s3_addr a;
        char err[256] = "";
        ck_assert_msg(s3_addr_init(&a, bad[i], NULL, "bkt", false, err, sizeof(err)) == LS_ERROR, "%s", bad[i]);
        ck_assert_msg(strstr(err, "s3_endpoint") != NULL, "%s: %s", bad[i], err);
    }
    struct s3_addr a;
    ck_assert_int_eq(s3_addr_init(&a, NULL, NULL, "a/b", false, NULL, 0), LS_ERROR);
    ck_assert_int_eq(s3_addr_init(&a, NULL, NULL, "", false, NULL, 0), LS_ERROR);
    ck_assert_int_eq(s3_addr_init(&a, NULL, NULL, "a b", false, NULL, 0), LS_ERROR);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("s3_addr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, minio_ip);
    tcase_add_test(tc, aws_regional_vhost);
    tcase_add_test(tc, schemeless_with_port);
    tcase_add_test(tc, region_derivation);
    tcase_add_test(tc, default_endpoint);
    tcase_add_test(tc, path_style_rules);
    tcase_add_test(tc, vhost_root_and_query);
    tcase_add_test(tc, bad_endpoints);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
