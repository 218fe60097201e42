/*
 * test_s3_xml_stream.c - the streaming (expat) side of the out_s3 XML readers.
 *
 * test_s3_xml.c checks the S3/STS shapes; this file checks what a streaming
 * reader can get wrong where a DOM cannot: text that arrives in several
 * pieces (entities, character references, CDATA, nested elements), only the
 * first child of a name being followed, namespace prefixes, records that
 * streamed in before the document turned out malformed, and the caps on
 * one element's text and on nesting.
 */
#include <check.h>

#include "../../agent/aws.h"

START_TEST(text_in_pieces)
{
    /* expat reports each entity, character reference and CDATA section separately */
    const char *b = "<Error><Code>A&amp;B&#x43;<![CDATA[<D>]]>&lt;E&gt;</Code>"
                    "<Message>x<b>y</b><!-- no -->z<?pi no?></Message></Error>";
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_error(b, strlen(b), &e), LS_OK);
    ck_assert_str_eq(e.code, "A&BC<D><E>");
    ck_assert_str_eq(e.message, "xyz");   /* nested element text counts, comments and PIs do not */
    s3_xml_error_release(&e);
    /* CRLF is normalised, whitespace kept */
    const char *b2 = "<Error><Code> a\r\nb </Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(b2, strlen(b2), &e), LS_OK);
    ck_assert_str_eq(e.code, " a\nb ");
    s3_xml_error_release(&e);
}
END_TEST

START_TEST(first_child_only)
{
    /* the second <Code> is ignored even when the first is empty */
    const char *b = "<Error><Code/><Code>late</Code><Message>m1</Message><Message>m2</Message></Error>";
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_error(b, strlen(b), &e), LS_OK);
    ck_assert_str_eq(e.code, "");
    ck_assert_str_eq(e.message, "m1");
    s3_xml_error_release(&e);
    /* a Code below another element is not the error's Code */
    const char *b2 = "<Error><Detail><Code>deep</Code></Detail></Error>";
    ck_assert_int_eq(s3_xml_parse_error(b2, strlen(b2), &e), LS_OK);
    ck_assert_str_eq(e.code, "");
    s3_xml_error_release(&e);
    /* STS: only the first <Error> of an <ErrorResponse> is read */
    const char *b3 = "<ErrorResponse><Error><Message>first</Message></Error><Error><Code>second</Code></Error>"
                     "</ErrorResponse>";
    ck_assert_int_eq(s3_xml_parse_error(b3, strlen(b3), &e), LS_OK);
    ck_assert_str_eq(e.code, "");
    ck_assert_str_eq(e.message, "first");
    s3_xml_error_release(&e);
    /* an ErrorResponse without an Error is not an error document */
    ck_assert_int_eq(s3_xml_parse_error("<ErrorResponse/>", 16, &e), LS_DECLINED);
    ck_assert_ptr_null(e.code);
    /* the STS credentials come from the first Result's first Credentials */
    const char *s = "<AssumeRoleResponse><AssumeRoleResult><Other/></AssumeRoleResult>"
                    "<AssumeRoleResult><Credentials><AccessKeyId>K</AccessKeyId>"
                    "<SecretAccessKey>S</SecretAccessKey></Credentials></AssumeRoleResult></AssumeRoleResponse>";
    struct aws_creds c;
    ck_assert_int_eq(s3_xml_parse_sts_creds(s, strlen(s), &c, &e), LS_ERROR);
    ck_assert_ptr_null(c.key);
}
END_TEST

START_TEST(namespaces)
{
    const char *b = "<s3:Error xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:Code>P</s3:Code>"
                    "<Code>unprefixed</Code></s3:Error>";
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_error(b, strlen(b), &e), LS_OK);
    ck_assert_str_eq(e.code, "P");   /* same local name: the first one */
    s3_xml_error_release(&e);
    /* a namespace URI with spaces in it does not confuse the local name */
    const char *b2 = "<Error xmlns=\"urn:a b c\"><Code>X</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(b2, strlen(b2), &e), LS_OK);
    ck_assert_str_eq(e.code, "X");
    s3_xml_error_release(&e);
    /* namespace mistakes elsewhere do not make the document unreadable */
    const char *b3 = "<Error xmln:=\"x\" q:a:b=\"y\"><:Code>no prefix</:Code><Code>C</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(b3, strlen(b3), &e), LS_OK);
    ck_assert_str_eq(e.code, "C");
    s3_xml_error_release(&e);
}
END_TEST

START_TEST(records_and_failures)
{
    /* fields of one <Contents> never leak into the next */
    const char *b = "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><ETag>e1</ETag></Contents>"
                    "<Contents><Size>2</Size></Contents><Contents><Key>c</Key></Contents></ListBucketResult>";
    struct s3_list_result r;
    struct s3_xml_error e = { 0 };
    ck_assert_int_eq(s3_xml_parse_list(b, strlen(b), &r, &e), LS_OK);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_str_eq(r.objects[1].key, "c");
    ck_assert_int_eq(r.objects[1].size, -1);
    ck_assert_ptr_null(r.objects[1].etag);
    s3_list_result_release(&r);
    /* objects streamed before the document breaks are dropped, not returned */
    const char *bad = "<ListBucketResult><Contents><Key>a</Key></Contents><Contents><Key>b</Key>";
    ck_assert_int_eq(s3_xml_parse_list(bad, strlen(bad), &r, &e), LS_ERROR);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_ptr_null(r.objects);
    struct s3_parts p;
    const char *badp = "<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part><Part>&bogus;</Part>"
                       "</ListPartsResult>";
    ck_assert_int_eq(s3_xml_parse_parts(badp, strlen(badp), &p, &e), LS_ERROR);
    ck_assert_uint_eq(p.n, 0);
    ck_assert_ptr_null(p.parts);
    /* an error left e untouched when the body is not XML */
    e.code = ls_strdup("kept");
    ck_assert_int_eq(s3_xml_parse_error("<Error><Code>x</Code>", 21, &e), LS_ERROR);
    ck_assert_str_eq(e.code, "kept");
    s3_xml_error_release(&e);
}
END_TEST

/* ASCII s as UTF-16LE with a byte order mark, through s3_xml_parse_error */
static int parse_utf16le(const char *s, struct s3_xml_error *e)
{
    size_t n = strlen(s);
    char *p = ls_malloc(2 * n + 2);
    p[0] = (char)0xff;
    p[1] = (char)0xfe;
    for (size_t i = 0; i < n; i++) {
        p[2 + 2 * i] = s[i];
        p[3 + 2 * i] = 0;
    }
    int rc = s3_xml_parse_error(p, 2 * n + 2, e);
    ls_free(p);
    return rc;
}

START_TEST(caps_and_nul)
{
    struct s3_xml_error e = { 0 };
    /* one element's text over 64 KiB is refused */
    size_t n = 70000;
    struct ls_buf b;
    ls_buf_init(&b, 0);
    ls_buf_printf(&b, "<Error><Code>");
    for (size_t i = 0; i < n; i++) {
        ls_buf_putc(&b, 'x');
    }
    ls_buf_printf(&b, "</Code></Error>");
    ck_assert_int_eq(s3_xml_parse_error(b.p, b.len, &e), LS_ERROR);
    ck_assert_ptr_null(e.code);
    /* ...but long text in an element nobody reads is fine */
    ls_buf_reset(&b);
    ls_buf_printf(&b, "<Error><Code>c</Code><Junk>");
    for (size_t i = 0; i < n; i++) {
        ls_buf_putc(&b, 'x');
    }
    ls_buf_printf(&b, "</Junk></Error>");
    ck_assert_int_eq(s3_xml_parse_error(b.p, b.len, &e), LS_OK);
    ck_assert_str_eq(e.code, "c");
    s3_xml_error_release(&e);
    /* nesting: 200 deep is accepted, 300 deep is not */
    for (int depth = 200; depth <= 300; depth += 100) {
        ls_buf_reset(&b);
        ls_buf_printf(&b, "<Error><Code>c</Code>");
        for (int i = 0; i < depth; i++) {
            ls_buf_printf(&b, "<a>");
        }
        for (int i = 0; i < depth; i++) {
            ls_buf_printf(&b, "</a>");
        }
        ls_buf_printf(&b, "</Error>");
        ck_assert_int_eq(s3_xml_parse_error(b.p, b.len, &e), depth == 200 ? LS_OK : LS_ERROR);
        s3_xml_error_release(&e);
    }
    ls_buf_release(&b);
    /* the document ends at a NUL after the root; a NUL inside it leaves it unfinished */
    const char z1[] = "<Error><Code>z</Code></Error>\0\0garbage";
    ck_assert_int_eq(s3_xml_parse_error(z1, sizeof(z1) - 1, &e), LS_OK);
    ck_assert_str_eq(e.code, "z");
    s3_xml_error_release(&e);
    const char z2[] = "<Error><Code>z\0</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(z2, sizeof(z2) - 1, &e), LS_ERROR);
    /* UTF-16 is parsed whole (zero bytes and all), and a DOCTYPE the byte scan cannot see
     * there still stops the parser */
    ck_assert_int_eq(parse_utf16le("<Error><Code>u16</Code></Error>", &e), LS_OK);
    ck_assert_str_eq(e.code, "u16");
    s3_xml_error_release(&e);
    ck_assert_int_eq(parse_utf16le("<!DOCTYPE Error><Error><Code>x</Code></Error>", &e), LS_ERROR);
    ck_assert_ptr_null(e.code);
    ck_assert_int_eq(parse_utf16le("<!DOCTYPE Error [<!ENTITY x \"y\">]><Error><Code>&x;</Code></Error>", &e),
                     LS_ERROR);
    ck_assert_ptr_null(e.code);
    /* XML 1.x only, as before */
    const char *v8 = "<?xml version=\"8\"?><Error><Code>v</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(v8, strlen(v8), &e), LS_ERROR);
    const char *v11 = "<?xml version=\"1.1\"?><Error><Code>v</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(v11, strlen(v11), &e), LS_OK);
    s3_xml_error_release(&e);
    /* a declared encoding expat knows is converted to UTF-8 */
    const char *l1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>\xe9</Code></Error>";
    ck_assert_int_eq(s3_xml_parse_error(l1, strlen(l1), &e), LS_OK);
    ck_assert_str_eq(e.code, "\xc3\xa9");
    s3_xml_error_release(&e);
}
END_TEST

int main(void)
{
    s3_xml_global_init();
    Suite *s = suite_create("s3_xml_stream");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, text_in_pieces);
    tcase_add_test(tc, first_child_only);
    tcase_add_test(tc, namespaces);
    tcase_add_test(tc, records_and_failures);
    tcase_add_test(tc, caps_and_nul);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
