/*
 * test_s3_xml.c - parsing S3/STS XML bodies and building CompleteMultipartUpload.
 *
 * Bodies are shaped like the examples in the S3 API reference (Error,
 * ListObjectsV2, InitiateMultipartUpload, CompleteMultipartUpload, ListParts)
 * and the STS AssumeRole reference, plus the hostile cases: an <Error> sent
 * with HTTP 200 after keep-alive whitespace, XXE, entity expansion, oversize
 * and truncated bodies.
 */
#include <check.h>

#include "../../agent/aws.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static int parse_error_str(const char *s, struct s3_xml_error *e)
{
    return s3_xml_parse_error(s, strlen(s), e);
}

START_TEST(error_body)
{
    const char *b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<Error><Code>RequestTimeTooSkewed</Code>"
                    "<Message>The difference between the request time and the current time is too large.</Message>"
                    "<RequestTime>20240101T000000Z</RequestTime><ServerTime>2024-01-01T00:20:00Z</ServerTime>"
                    "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
                    "<RequestId>4442587FB7D0A2F9</RequestId><HostId>abc=</HostId></Error>";
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(parse_error_str(b, &e), LS_OK);
    ck_assert_str_eq(e.code, "RequestTimeTooSkewed");
    ck_assert_str_eq(e.server_time, "2024-01-01T00:20:00Z");
    ck_assert_str_eq(e.request_time, "20240101T000000Z");
    ck_assert_str_eq(e.request_id, "4442587FB7D0A2F9");
    ck_assert_str_eq(e.host_id, "abc=");
    ck_assert_ptr_null(e.region);
    s3_xml_error_release(&e);

    const char *b2 = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; "
                     "expecting 'ap-northeast-1'</Message><Region>ap-northeast-1</Region>"
                     "<RequestId>R</RequestId></Error>";
    ck_assert_int_eq(parse_error_str(b2, &e), LS_OK);
    ck_assert_str_eq(e.region, "ap-northeast-1");
    ck_assert(strstr(e.message, "expecting 'ap-northeast-1'") != NULL);
    s3_xml_error_release(&e);

    /* entities in text are decoded; not an error document -> DECLINED */
    const char *b3 = "<Error><Code>A&amp;B</Code><Message>&lt;x&gt;</Message></Error>";
    ck_assert_int_eq(parse_error_str(b3, &e), LS_OK);
    ck_assert_str_eq(e.code, "A&B");
    ck_assert_str_eq(e.message, "<x>");
    s3_xml_error_release(&e);
    ck_assert_int_eq(parse_error_str("<ListBucketResult " NS "/>", &e), LS_DECLINED);
    ck_assert_ptr_null(e.code);
    /* STS error shape */
    const char *b4 = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                     "<Code>AccessDenied</Code><Message>not authorized</Message></Error>"
                     "<RequestId>rid-1</RequestId></ErrorResponse>";
    ck_assert_int_eq(parse_error_str(b4, &e), LS_OK);
    ck_assert_str_eq(e.code, "AccessDenied");
    ck_assert_str_eq(e.request_id, "rid-1");
    s3_xml_error_release(&e);
}
END_TEST

START_TEST(malformed_and_hostile)
{
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(parse_error_str("", &e), LS_ERROR);
    ck_assert_int_eq(parse_error_str("   \n  ", &e), LS_ERROR);
    ck_assert_int_eq(parse_error_str("<Error><Code>x</Code>", &e), LS_ERROR);   /* truncated */
    ck_assert_int_eq(parse_error_str("not xml at all", &e), LS_ERROR);
    ck_assert_int_eq(s3_xml_parse_error(NULL, 0, &e), LS_ERROR);
    /* XXE: external entity pointing at a local file */
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                      "<Error><Code>&x;</Code></Error>";
    ck_assert_int_eq(parse_error_str(xxe, &e), LS_ERROR);
    ck_assert_ptr_null(e.code);
    /* billion laughs */
    const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                      "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
                      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
                      "<Error><Code>&lol3;</Code></Error>";
    ck_assert_int_eq(parse_error_str(lol, &e), LS_ERROR);
    /* an undeclared entity is a well-formedness error, not an empty string */
    ck_assert_int_eq(parse_error_str("<Error><Code>&nope;</Code></Error>", &e), LS_ERROR);
    /* oversize: refused without parsing */
    size_t big = S3_XML_MAX_BODY + 1;
    char *p = ls_malloc(big);
    memset(p, ' ', big);
    memcpy(p, "<Error><Code>x</Code></Error>", 29);
    ck_assert_int_eq(s3_xml_parse_error(p, big, &e), LS_ERROR);
    ls_free(p);
    s3_xml_error_release(&e);
}
END_TEST

START_TEST(initiate)
{
    const char *b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult " NS ">"
                    "<Bucket>example-bucket</Bucket><Key>example-object</Key>"
                    "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
                    "</InitiateMultipartUploadResult>";
    char *id = NULL;
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_initiate(b, strlen(b), &id, &e), LS_OK);
    ck_assert_str_eq(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    ls_free(id);
    const char *noid = "<InitiateMultipartUploadResult " NS "><UploadId></UploadId></InitiateMultipartUploadResult>";
    ck_assert_int_eq(s3_xml_parse_initiate(noid, strlen(noid), &id, &e), LS_ERROR);
    ck_assert_ptr_null(id);
    const char *err = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    ck_assert_int_eq(s3_xml_parse_initiate(err, strlen(err), &id, &e), LS_ERROR);
    ck_assert_str_eq(e.code, "AccessDenied");
    s3_xml_error_release(&e);
}
END_TEST

START_TEST(complete_ok_and_200_error)
{
    const char *ok = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult " NS ">"
                     "<Location>http://Example-Bucket.s3.amazonaws.com/Example-Object</Location>"
                     "<Bucket>Example-Bucket</Bucket><Key>Example-Object</Key>"
                     "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag></CompleteMultipartUploadResult>";
    char *etag = NULL;
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_complete(ok, strlen(ok), &etag, &e), LS_OK);
    ck_assert_str_eq(etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
    ls_free(etag);
    /* HTTP 200 whose body (after keep-alive whitespace) is an Error: must fail */
    const char *bad = "          \n  \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try "
                      "again.</Message><RequestId>656c76696e6727732072657175657374</RequestId>"
                      "<HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";
    ck_assert_int_eq(s3_xml_parse_complete(bad, strlen(bad), &etag, &e), LS_ERROR);
    ck_assert_str_eq(e.code, "InternalError");
    ck_assert_ptr_null(etag);
    s3_xml_error_release(&e);
    /* only whitespace (connection cut while S3 was still working): error without a code */
    ck_assert_int_eq(s3_xml_parse_complete("      ", 6, &etag, &e), LS_ERROR);
    ck_assert_ptr_null(e.code);
    /* some other document */
    const char *other = "<Foo/>";
    ck_assert_int_eq(s3_xml_parse_complete(other, strlen(other), NULL, &e), LS_ERROR);
    ck_assert_ptr_null(e.code);
}
END_TEST

START_TEST(list_v2)
{
    const char *b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult " NS ">"
                    "<Name>bucket</Name><Prefix/><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
                    "<IsTruncated>true</IsTruncated>"
                    "<Contents><Key>my-image.jpg</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
                    "<ETag>\"fba9dede5f27731c9771645a39863328\"</ETag><Size>434234</Size>"
                    "<StorageClass>STANDARD</StorageClass></Contents>"
                    "<Contents><Key>logs/a b &amp; \xe6\x97\xa5.gz</Key><Size>0</Size></Contents>"
                    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
                    "</ListBucketResult>";
    struct s3_list_result r;
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_list(b, strlen(b), &r, &e), LS_OK);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_str_eq(r.objects[0].key, "my-image.jpg");
    ck_assert_int_eq(r.objects[0].size, 434234);
    ck_assert_str_eq(r.objects[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
    ck_assert_str_eq(r.objects[0].last_modified, "2009-10-12T17:50:30.000Z");
    ck_assert_str_eq(r.objects[1].key, "logs/a b & \xe6\x97\xa5.gz");
    ck_assert_int_eq(r.objects[1].size, 0);
    ck_assert(r.truncated);
    ck_assert_str_eq(r.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    s3_list_result_release(&r);

    const char *empty = "<ListBucketResult " NS "><Name>b</Name><KeyCount>0</KeyCount>"
                        "<IsTruncated>false</IsTruncated></ListBucketResult>";
    ck_assert_int_eq(s3_xml_parse_list(empty, strlen(empty), &r, &e), LS_OK);
    ck_assert_uint_eq(r.n, 0);
    ck_assert(!r.truncated);
    ck_assert_ptr_null(r.next_token);
    s3_list_result_release(&r);

    const char *err = "<Error><Code>NoSuchBucket</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_list(err, strlen(err), &r, &e), LS_ERROR);
    ck_assert_str_eq(e.code, "NoSuchBucket");
    s3_xml_error_release(&e);
}
END_TEST

START_TEST(list_parts)
{
    const char *b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult " NS ">"
                    "<Bucket>example-bucket</Bucket><Key>example-object</Key><UploadId>XXBsb2</UploadId>"
                    "<PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker>"
                    "<MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
                    "<Part><PartNumber>2</PartNumber><LastModified>2010-11-10T20:48:34.000Z</LastModified>"
                    "<ETag>\"7778aef83f66abc1fa1e8477f296d394\"</ETag><Size>10485760</Size></Part>"
                    "<Part><PartNumber>3</PartNumber><ETag>\"aaaa18db4cc2f85cedef654fccc4a4x8\"</ETag>"
                    "<Size>10485760</Size></Part>"
                    "<Part><PartNumber>0</PartNumber><ETag>\"bogus\"</ETag></Part>"
                    "</ListPartsResult>";
    struct s3_parts p;
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_parts(b, strlen(b), &p, &e), LS_OK);
    ck_assert_uint_eq(p.n, 2);   /* part 0 is invalid and skipped */
    ck_assert_int_eq(p.parts[0].number, 2);
    ck_assert_str_eq(p.parts[0].etag, "\"7778aef83f66abc1fa1e8477f296d394\"");
    ck_assert_int_eq(p.parts[0].size, 10485760);
    ck_assert_int_eq(p.parts[1].number, 3);
    ck_assert(p.truncated);
    ck_assert_int_eq(p.next_marker, 3);
    s3_parts_release(&p);
}
END_TEST

START_TEST(build_complete)
{
    struct s3_part parts[] = { { 1, "\"a54357aff0632cce46d942af68356b38\"", 0 },
                               { 2, "\"0c78aef83f66abc1fa1e8477f296d394\"", 0 },
                               { 3, "weird<&>", 0 } };
    struct ls_buf b;
    ls_buf_init(&b, 0);
    ck_assert_int_eq(s3_xml_build_complete(&b, parts, 3), LS_OK);
    ck_assert_str_eq(ls_buf_cstr(&b),
                     "<CompleteMultipartUpload " NS ">"
                     "<Part><ETag>\"a54357aff0632cce46d942af68356b38\"</ETag><PartNumber>1</PartNumber></Part>"
                     "<Part><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag><PartNumber>2</PartNumber></Part>"
                     "<Part><ETag>weird&lt;&amp;&gt;</ETag><PartNumber>3</PartNumber></Part>"
                     "</CompleteMultipartUpload>");
    /* well-formed: the reader accepts it as a (non-error) document */
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_error(b.p, b.len, &e), LS_DECLINED);
    ls_buf_release(&b);
}
END_TEST

START_TEST(sts_creds)
{
    const char *b = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
                    "<SourceIdentity>Alice</SourceIdentity><AssumedRoleUser>"
                    "<Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>"
                    "<AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId></AssumedRoleUser>"
                    "<Credentials><AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
                    "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
                    "<SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764</SessionToken>"
                    "<Expiration>2019-11-09T13:34:41Z</Expiration></Credentials>"
                    "<PackedPolicySize>6</PackedPolicySize></AssumeRoleResult>"
                    "<ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
                    "</ResponseMetadata></AssumeRoleResponse>";
    struct aws_creds c;
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_sts_creds(b, strlen(b), &c, &e), LS_OK);
    ck_assert_str_eq(c.key, "ASIAIOSFODNN7EXAMPLE");
    ck_assert_str_eq(c.secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    ck_assert_str_eq(c.token, "AQoDYXdzEPT//////////wEXAMPLEtc764");
    ck_assert_int_eq(c.expiration, 1573306481);   /* 2019-11-09T13:34:41Z */
    aws_creds_release(&c);

    const char *w = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                    "<AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
                    "<SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00.123Z</Expiration>"
                    "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    ck_assert_int_eq(s3_xml_parse_sts_creds(w, strlen(w), &c, &e), LS_OK);
    ck_assert_str_eq(c.key, "ASIAWEB");
    ck_assert_int_eq(c.expiration, 1893456000);
    aws_creds_release(&c);

    const char *err = "<ErrorResponse><Error><Code>ExpiredTokenException</Code><Message>m</Message></Error>"
                      "</ErrorResponse>";
    ck_assert_int_eq(s3_xml_parse_sts_creds(err, strlen(err), &c, &e), LS_ERROR);
    ck_assert_str_eq(e.code, "ExpiredTokenException");
    ck_assert_ptr_null(c.key);
    s3_xml_error_release(&e);
    const char *nosecret = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
                           "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
    ck_assert_int_eq(s3_xml_parse_sts_creds(nosecret, strlen(nosecret), &c, &e), LS_ERROR);
    ck_assert_ptr_null(c.key);
}
END_TEST

START_TEST(iso8601)
{
    ck_assert_int_eq(aws_parse_iso8601("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(aws_parse_iso8601("2020-11-05T02:02:26Z"), 1604541746);
    ck_assert_int_eq(aws_parse_iso8601("2020-11-05T02:02:26.5+00:00"), 1604541746);
    ck_assert_int_eq(aws_parse_iso8601("2020-13-05T02:02:26Z"), -1);
    ck_assert_int_eq(aws_parse_iso8601("2020-11-05"), -1);
    ck_assert_int_eq(aws_parse_iso8601("2020-11-05T02:02:26+09:00"), -1);
    struct aws_creds c = { .expiration = 10000 };
    ck_assert(!aws_cred_needs_refresh(&c, 10000 - AWS_CRED_REFRESH_BEFORE - 1));
    ck_assert(aws_cred_needs_refresh(&c, 10000 - AWS_CRED_REFRESH_BEFORE));
    c.expiration = 0;
    ck_assert(!aws_cred_needs_refresh(&c, INT64_MAX / 2));
}
END_TEST

int main(void)
{
    s3_xml_global_init();
    Suite *s = suite_create("s3_xml");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_body);
    tcase_add_test(tc, malformed_and_hostile);
    tcase_add_test(tc, initiate);
    tcase_add_test(tc, complete_ok_and_200_error);
    tcase_add_test(tc, list_v2);
    tcase_add_test(tc, list_parts);
    tcase_add_test(tc, build_complete);
    tcase_add_test(tc, sts_creds);
    tcase_add_test(tc, iso8601);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
