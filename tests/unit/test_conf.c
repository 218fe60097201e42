/*
 * test_conf.c - the configuration parser (agent/conf.c).
 *
 * Each construct of fluentd's v1 grammar is fed as text and the resulting
 * tree (values, file:line) checked; malformed input must fail with a
 * "file:line: ..." message that names the problem. Include tests use the
 * fixture tree under tests/unit/data/conf (run from the repository root, as
 * tests/run.py does).
 */
#include <check.h>

#include "conf.h"
#include "log.h"

#define DATA "tests/unit/data/conf/"

static char err[1024];
static char logbuf[16384];

static void hook(int level, const char *line)
{
    size_t n = strlen(logbuf);
    (void)level;
    snprintf(logbuf + n, sizeof(logbuf) - n, "%s", line);
}

static void setup(void)
{
    logbuf[0] = '\0';
    err[0] = '\0';
    ls_log_set_hook(hook);
    ls_log_level = LS_LOG_WARN;
}

static struct ls_conf *load(const char *text)
{
    struct ls_conf *c = ls_conf_load_string("t.conf", text, strlen(text), err, sizeof(err));
    ck_assert_msg(c != NULL, "parse failed: %s\n--- input ---\n%s", err, text);
    return c;
}

/* Parse must fail; returns the message. */
static const char *load_err(const char *text)
{
    struct ls_conf *c = ls_conf_load_string("t.conf", text, strlen(text), err, sizeof(err));
    ck_assert_msg(c == NULL, "parse should have failed:\n%s", text);
    return err;
}

static void assert_err(const char *text, const char *expect)
{
    const char *e = load_err(text);
    ck_assert_msg(strstr(e, expect) != NULL, "error '%s' does not contain '%s'", e, expect);
}

/* The value of key in the first section named name (or root when name is NULL). */
static const char *val(struct ls_conf *c, const char *name, const char *key)
{
    struct ls_conf_section *s = name ? ls_conf_child(c->root, name) : c->root;
    ck_assert_msg(s != NULL, "no <%s>", name ? name : "ROOT");
    return ls_conf_get(s, key);
}

static int count_children(struct ls_conf_section *s)
{
    int n = 0;
    for (struct ls_conf_section *c = s->children; c; c = c->next) {
        n++;
    }
    return n;
}

START_TEST(test_basic_tree)
{
    struct ls_conf *c = load("<source>\n"
                             "  @type tail\n"
                             "  path /var/log/nginx/access.log\n"
                             "  tag nginx.access\n"
                             "</source>\n"
                             "\n"
                             "<match nginx.**>\n"
                             "  @type s3\n"
                             "</match>\n");
    struct ls_conf_section *src = c->root->children;
    ck_assert_str_eq(src->name, "source");
    ck_assert_str_eq(src->arg, "");
    ck_assert_int_eq(src->line, 1);
    ck_assert_str_eq(src->file, "t.conf");
    ck_assert_ptr_eq(src->parent, c->root);
    ck_assert_str_eq(ls_conf_get(src, "path"), "/var/log/nginx/access.log");
    ck_assert_int_eq(ls_conf_get_param(src, "tag")->line, 4);
    ck_assert_str_eq(ls_conf_type(src), "tail");
    ck_assert_str_eq(src->next->name, "match");
    ck_assert_str_eq(src->next->arg, "nginx.**");
    ck_assert_int_eq(src->next->line, 7);
    ck_assert_ptr_null(ls_conf_get(src, "nope"));
    ck_assert_int_eq(count_children(c->root), 2);
    ck_assert_int_eq((int)c->nfiles, 1);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_empty_and_comments_only)
{
    struct ls_conf *c = load("");
    ck_assert_ptr_null(c->root->children);
    ck_assert_ptr_null(c->root->params);
    ck_assert_str_eq(c->root->name, "ROOT");
    ls_conf_destroy(c);
    c = load("# only a comment\n\n   # another\n");
    ck_assert_ptr_null(c->root->children);
    ls_conf_destroy(c);
    c = load("\n\n\t \n");
    ck_assert_ptr_null(c->root->params);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_comments_everywhere)
{
    struct ls_conf *c = load("# header\n"
                             "<source> # after the open tag\n"
                             "  # before a param\n"
                             "  @type dummy # after a reserved value\n"
                             "  tag a.b   # after a bare value\n"
                             "  q \"x y\" # after a quoted value\n"
                             "  s 'z' # after a single-quoted value\n"
                             "  j [1, # inside JSON\n"
                             "     2] # after JSON\n"
                             "</source> # after the close tag\n"
                             "# trailer");
    struct ls_conf_section *s = ls_conf_child(c->root, "source");
    ck_assert_str_eq(ls_conf_get(s, "@type"), "dummy");
    ck_assert_str_eq(ls_conf_get(s, "tag"), "a.b");
    ck_assert_str_eq(ls_conf_get(s, "q"), "x y");
    ck_assert_str_eq(ls_conf_get(s, "s"), "z");
    ck_assert_str_eq(ls_conf_get(s, "j"), "[1,2]");
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_unquoted_values)
{
    struct ls_conf *c = load("a foo#bar\n"
                             "b foo #bar\n"
                             "c #starts-with-hash\n"
                             "d  value with  spaces   \n"
                             "e \\t\\n stays\n"
                             "f\n"
                             "g %{path}%{time_slice}_%{index}.%{file_extension}\n"
                             "h ${tag} %Y%m%d\n"
                             "i\t\ttabbed\n");
    ck_assert_str_eq(val(c, NULL, "a"), "foo#bar");
    ck_assert_str_eq(val(c, NULL, "b"), "foo");
    ck_assert_str_eq(val(c, NULL, "c"), "#starts-with-hash");
    ck_assert_str_eq(val(c, NULL, "d"), "value with  spaces");
    ck_assert_str_eq(val(c, NULL, "e"), "\\t\\n stays");
    ck_assert_str_eq(val(c, NULL, "f"), "");
    ck_assert_str_eq(val(c, NULL, "g"), "%{path}%{time_slice}_%{index}.%{file_extension}");
    ck_assert_str_eq(val(c, NULL, "h"), "${tag} %Y%m%d");
    ck_assert_str_eq(val(c, NULL, "i"), "tabbed");
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_double_quoted)
{
    struct ls_conf *c = load("a \"tab\\there\\nnl \\\"q\\\" \\' \\\\ end\"\n"
                             "b \"\\[(?<time>[^\\\\]]*)\\\\] (?<message>.*)\"\n"
                             "c \"\\#{not interpolated} \\$ \\[\"\n"
                             "d \"\"\n"
                             "e \"has # hash\"\n"
                             "f \"\\r\\f\\b\"\n");
    ck_assert_str_eq(val(c, NULL, "a"), "tab\there\nnl \"q\" ' \\ end");
    ck_assert_str_eq(val(c, NULL, "b"), "[(?<time>[^\\]]*)\\] (?<message>.*)");
    ck_assert_str_eq(val(c, NULL, "c"), "#{not interpolated} $ [");
    ck_assert_str_eq(val(c, NULL, "d"), "");
    ck_assert_str_eq(val(c, NULL, "e"), "has # hash");
    ck_assert_str_eq(val(c, NULL, "f"), "\r\f\b");
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_multiline_double_quoted)
{
    struct ls_conf *c = load("<match a>\n"
                             "  msg \"line one\n"
                             "line two\n"
                             "line three\"\n"
                             "  joined \"abc\\\n"
                             "def\"\n"
                             "  after x\n"
                             "</match>\n");
    struct ls_conf_section *m = ls_conf_child(c->root, "match");
    ck_assert_str_eq(ls_conf_get(m, "msg"), "line one\nline two\nline three");
    ck_assert_str_eq(ls_conf_get(m, "joined"), "abcdef");
    ck_assert_int_eq(ls_conf_get_param(m, "after")->line, 7);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_double_quoted_errors)
{
    assert_err("<match a>\n  k \"bad \\q escape\"\n</match>\n",
               "t.conf:2: invalid escape \\q in double-quoted string");
    assert_err("k \"\\u00e9\"\n", "t.conf:1: invalid escape \\u");
    assert_err("a 1\nk \"no end\nmore\n", "unterminated double-quoted string started at line 2");
    /* a backslash as the very last byte (found by the fuzzer: used to loop forever) */
    assert_err("k \"abc\\", "t.conf:1: unterminated double-quoted string started at line 1");
    assert_err("k \"x\" trailing\n", "t.conf:1: unexpected text 'trailing' after a quoted value");
}
END_TEST

/* Values are C strings: a NUL byte, raw or escaped, would cut one short without a word. */
START_TEST(test_nul_byte_refused)
{
    static const char raw[] = "a 1\n<match x>\n  path /tmp/a\0b\n</match>\n";
    struct ls_conf *c = ls_conf_load_string("t.conf", raw, sizeof(raw) - 1, err, sizeof(err));

    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "t.conf:3: a NUL byte in the configuration") != NULL, "%s", err);
    assert_err("a 1\nk \"x\\0y\"\n", "t.conf:2: \\0 (a NUL byte) cannot be part of a configuration value");
    assert_err("k \"#{\"x\\0y\"}\"\n", "\\0 (a NUL byte) cannot be part of a configuration value");
}
END_TEST

START_TEST(test_single_quoted)
{
    struct ls_conf *c = load("a 'it\\'s \\\\ \\t \\n'\n"
                             "b '#{ENV[\"HOME\"]}'\n"
                             "c ''\n");
    ck_assert_str_eq(val(c, NULL, "a"), "it's \\ \\t \\n");
    ck_assert_str_eq(val(c, NULL, "b"), "#{ENV[\"HOME\"]}");
    ck_assert_str_eq(val(c, NULL, "c"), "");
    ls_conf_destroy(c);
    assert_err("x 1\nk 'no end\n'\n", "t.conf:2: unterminated single-quoted string");
    assert_err("k 'x' y\n", "t.conf:1: unexpected text");
}
END_TEST

START_TEST(test_json_values)
{
    struct ls_conf *c = load("arr [\"a\", \"b\",\n"
                             "      # comment line inside\n"
                             "      \"c#notcomment\"]\n"
                             "h {\"k1\": \"v1\",\n"
                             "   \"k2\": [1, 2.5, -3e2, true, false, null],\n"
                             "   \"k3\": {\"n\": {}}}\n"
                             "empty []\n"
                             "esc [\"a\\\"b\\\\c\\u00e9\"]\n"
                             "next 1\n");
    ck_assert_str_eq(val(c, NULL, "arr"), "[\"a\",\"b\",\"c#notcomment\"]");
    ck_assert_str_eq(val(c, NULL, "h"),
                     "{\"k1\":\"v1\",\"k2\":[1,2.5,-3e2,true,false,null],\"k3\":{\"n\":{}}}");
    ck_assert_str_eq(val(c, NULL, "empty"), "[]");
    ck_assert_str_eq(val(c, NULL, "esc"), "[\"a\\\"b\\\\c\\u00e9\"]");
    ck_assert_int_eq(ls_conf_get_param(c->root, "next")->line, 9);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_json_errors)
{
    assert_err("a 1\nk [1, 2,\n 3\n", "t.conf:2: incomplete JSON array");
    assert_err("k {\"a\": 1\n", "t.conf:1: incomplete JSON hash");
    assert_err("k [\"unterminated\n", "t.conf:1: invalid JSON array");
    assert_err("subject [CRITICAL] disk full\n", "t.conf:1: invalid JSON array");
    assert_err("k [1,,2]\n", "invalid JSON array");
    assert_err("k {a: 1}\n", "invalid JSON hash");
    assert_err("k [1] trailing\n", "t.conf:1: unexpected text");
    assert_err("k [01]\n", "invalid JSON array");
}
END_TEST

START_TEST(test_env_interpolation)
{
    char host[256];
    struct ls_conf *c;

    setenv("LS_T_SET", "value1", 1);
    setenv("LS_T_EMPTY", "", 1);
    unsetenv("LS_T_UNSET");
    setenv("SERVERENGINE_WORKER_ID", "3", 1);
    gethostname(host, sizeof(host));
    c = load("a \"#{ENV[\"LS_T_SET\"]}\"\n"
             "b \"pre-#{ENV['LS_T_SET']}-post\"\n"
             "c \"#{ENV['LS_T_UNSET']}\"\n"
             "d \"#{ENV['LS_T_UNSET'] || 'fallback'}\"\n"
             "e \"#{ENV['LS_T_EMPTY'] || 'fallback'}\"\n"
             "f \"#{ENV.fetch('LS_T_UNSET', 'fdef')}\"\n"
             "g \"#{ENV.fetch(\"LS_T_SET\", \"fdef\")}\"\n"
             "h \"#{Socket.gethostname}\"\n"
             "i \"#{hostname}/#{worker_id}\"\n"
             "j /var/log/#{ENV[\"LS_T_SET\"]}/x.log\n"
             "k \"#{ENV['LS_T_UNSET'] || ENV['LS_T_SET']}\"\n"
             "l \"#{'a' + ENV['LS_T_SET']}\"\n"
             "m [\"#{ENV['LS_T_SET']}\", 1]\n"
             "n \"#{ENV['LS_T_UNSET'] || use_default}\"\n"
             "o \"#{ENV['LS_T_SET'] || use_nil}\"\n"
             "p \"#{ENV['LS_T_SET'] ? ENV['LS_T_SET'] : 'x'}\"\n"
             "q \"#{ENV['LS_T_UNSET'] ? ENV['LS_T_UNSET'] : 'x'}\"\n"
             "r \"#{ENV['LS_T_EMPTY'] ? 'set' : 'unset'}\"\n"
             "s \"#{(ENV['LS_T_UNSET'] ? 'a' : ENV['LS_T_UNSET'] ? 'b' : 'c') + '!'}\"\n"
             /* the fluentd-kubernetes-daemonset image's pos_file */
             "t \"#{File.join('/var/log/', ENV.fetch('LS_T_UNSET', ''), 'c.log.pos')}\"\n"
             "u \"#{File.join('a/', '/b', 'c', '', 'd')}\"\n"
             "v \"#{File.join('', 'x')}|#{File.join()}|#{File.join(Dir.pwd, 'tmp')}\"\n"
             "w \"#{ENV['LS_T_UNSET'] || true}|#{ENV['LS_T_SET'] || false}|#{nil}|#{false}\"\n"
             "x \"#{false || 'y'}|#{false ? 'a' : 'b'}|#{nil || 'z'}\"\n"
             "<match \"app.#{ENV['LS_T_SET']}\">\n"
             "</match>\n");
    ck_assert_str_eq(val(c, NULL, "a"), "value1");
    ck_assert_str_eq(val(c, NULL, "b"), "pre-value1-post");
    ck_assert_str_eq(val(c, NULL, "c"), "");
    ck_assert_str_eq(val(c, NULL, "d"), "fallback");
    ck_assert_str_eq(val(c, NULL, "e"), "");   /* Ruby: "" is truthy */
    ck_assert_str_eq(val(c, NULL, "f"), "fdef");
    ck_assert_str_eq(val(c, NULL, "g"), "value1");
    ck_assert_str_eq(val(c, NULL, "h"), host);
    {
        char expect[300];
        snprintf(expect, sizeof(expect), "%s/3", host);
        ck_assert_str_eq(val(c, NULL, "i"), expect);
    }
    ck_assert_str_eq(val(c, NULL, "j"), "/var/log/value1/x.log");
    ck_assert_str_eq(val(c, NULL, "k"), "value1");
    ck_assert_str_eq(val(c, NULL, "l"), "avalue1");
    ck_assert_str_eq(val(c, NULL, "m"), "[\"value1\",1]");
    ck_assert_ptr_null(val(c, NULL, "n"));   /* use_default: as if not written */
    ck_assert_str_eq(val(c, NULL, "o"), "value1");
    ck_assert_str_eq(val(c, NULL, "p"), "value1");
    ck_assert_str_eq(val(c, NULL, "q"), "x");
    ck_assert_str_eq(val(c, NULL, "r"), "set");    /* Ruby: "" is truthy */
    ck_assert_str_eq(val(c, NULL, "s"), "c!");
    ck_assert_str_eq(val(c, NULL, "t"), "/var/log/c.log.pos");
    ck_assert_str_eq(val(c, NULL, "u"), "a/b/c/d");      /* Ruby: File.join('a/', '/b', 'c', '', 'd') */
    {
        char cwd[4096], expect[4200];
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
        snprintf(expect, sizeof(expect), "/x||%s/tmp", cwd);
        ck_assert_str_eq(val(c, NULL, "v"), expect);
    }
    ck_assert_str_eq(val(c, NULL, "w"), "true|value1||false");
    ck_assert_str_eq(val(c, NULL, "x"), "y|b|z");
    ck_assert_str_eq(ls_conf_child(c->root, "match")->arg, "app.value1");
    ls_conf_destroy(c);
    unsetenv("SERVERENGINE_WORKER_ID");
}
END_TEST

/* Number literals print as Ruby prints them (irb: "#{1_000}" is "1000", "#{017}" "15") */
START_TEST(test_ruby_numbers)
{
    struct ls_conf *c;

    unsetenv("LS_T_UNSET");
    setenv("LS_T_SET", "9200", 1);
    /* DailyHotel's td-agent.conf: port "#{ENV['ES_PORT'] ? ENV['ES_PORT'] : 9243}" */
    c = load("a \"#{ENV['LS_T_UNSET'] ? ENV['LS_T_UNSET'] : 9243}\"\n"
             "b \"#{ENV['LS_T_SET'] ? ENV['LS_T_SET'] : 9243}\"\n"
             "c \"#{ENV['LS_T_UNSET'] || 24224}|#{0}|#{-5}|#{-0}\"\n"
             "d \"#{1_000}|#{0x1f}|#{0o17}|#{017}|#{0b101}\"\n"
             "e \"#{1.50}|#{2.0}|#{-0.25}|#{10.000}\"\n"
             "f \"#{(9243)}\"\n");
    ck_assert_str_eq(val(c, NULL, "a"), "9243");
    ck_assert_str_eq(val(c, NULL, "b"), "9200");
    ck_assert_str_eq(val(c, NULL, "c"), "24224|0|-5|0");
    ck_assert_str_eq(val(c, NULL, "d"), "1000|31|15|15|5");
    ck_assert_str_eq(val(c, NULL, "e"), "1.5|2.0|-0.25|10.0");
    ck_assert_str_eq(val(c, NULL, "f"), "9243");
    ls_conf_destroy(c);
    unsetenv("LS_T_SET");
    assert_err("k \"#{1e3}\"\n", "t.conf:1: unsupported embedded Ruby #{1e3}: a number literal");
    assert_err("k \"#{08}\"\n", "t.conf:1: unsupported embedded Ruby");
    assert_err("k \"#{1.}\"\n", "t.conf:1: unsupported embedded Ruby");
    assert_err("k \"#{'a' + 1}\"\n", "'+' with a number");
    assert_err("k \"#{1 + 1}\"\n", "'+' with a number");
    assert_err("k \"#{99999999999999999999}\"\n", "beyond 64 bits");
    assert_err("k \"#{0.00001}\"\n", "prints with an exponent");     /* Ruby: 1.0e-05 */
    c = load("k \"#{0.0001}|#{-0.0}\"\n");
    ck_assert_str_eq(val(c, NULL, "k"), "0.0001|-0.0");
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_env_errors)
{
    unsetenv("LS_T_UNSET");
    assert_err("a 1\nb 2\nk \"#{File.read('/etc/passwd')}\"\n",
               "t.conf:3: unsupported embedded Ruby #{File.read('/etc/passwd')}");
    assert_err("k \"#{`id`}\"\n", "t.conf:1: unsupported embedded Ruby");
    assert_err("k \"#{ENV['A'] ; system('x')}\"\n", "t.conf:1: unsupported embedded Ruby");
    assert_err("k \"#{ENV.fetch('LS_T_UNSET')}\"\n", "LS_T_UNSET is not set");
    assert_err("k \"#{ENV['X']\"\n", "t.conf:1:");
    assert_err("k /x/#{Dir.glob('*')}\n", "t.conf:1: unsupported embedded Ruby");
    assert_err("k \"#{File.join('a', ENV['LS_T_UNSET'])}\"\n", "File.join of a value that is not");
    assert_err("k \"#{false + 'x'}\"\n", "'+' with a nil or false value");
    assert_err("k \"#{ENV['A'] ? 'x'}\"\n", "':' expected in 'cond ? a : b'");
}
END_TEST

START_TEST(test_interpolate_api)
{
    char *s;

    setenv("LS_T_SET", "v", 1);
    s = ls_conf_interpolate("a#{ENV['LS_T_SET']}b#{ENV[\"LS_T_SET\"]}", err, sizeof(err));
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "avbv");
    ls_free(s);
    s = ls_conf_interpolate("plain %Y ${tag}", err, sizeof(err));
    ck_assert_str_eq(s, "plain %Y ${tag}");
    ls_free(s);
    s = ls_conf_interpolate("#{exit 1}", err, sizeof(err));
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "unsupported embedded Ruby") != NULL, "%s", err);
}
END_TEST

START_TEST(test_element_errors)
{
    assert_err("<source>\n  @type x\n<match a>\n</match>\n",
               "t.conf:5: unclosed <source> started at line 1");
    assert_err("a 1\n<match a>\n  @type x\n</source>\n",
               "t.conf:4: unmatched end tag </source> (expected </match>");
    assert_err("</match>\n", "t.conf:1: unmatched end tag </match>");
    assert_err("< x>\n</x>\n", "t.conf:1: invalid element");
    assert_err("<source> @type tail\n</source>\n", "t.conf:1: unexpected text '@type tail' after <source>");
    assert_err("<match a\n</match>\n", "t.conf:1: expected '>'");
    assert_err("<match a>\n</match> extra\n", "t.conf:2: unexpected text");
}
END_TEST

START_TEST(test_nested_three_deep)
{
    struct ls_conf *c = load("<match s3.**>\n"
                             "  @type s3\n"
                             "  <buffer tag,time>\n"
                             "    timekey 3600\n"
                             "    <secondary_like x>\n"
                             "      <deepest>\n"
                             "        leaf yes\n"
                             "      </deepest>\n"
                             "    </secondary_like>\n"
                             "  </buffer>\n"
                             "  <format>\n"
                             "    @type json\n"
                             "  </format>\n"
                             "</match>\n");
    struct ls_conf_section *m = ls_conf_child(c->root, "match");
    struct ls_conf_section *b = ls_conf_child(m, "buffer");
    struct ls_conf_section *d = ls_conf_child(ls_conf_child(b, "secondary_like"), "deepest");
    ck_assert_str_eq(b->arg, "tag,time");
    ck_assert_str_eq(ls_conf_get(b, "timekey"), "3600");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(ls_conf_get(d, "leaf"), "yes");
    ck_assert_int_eq(d->line, 6);
    ck_assert_ptr_eq(d->parent->parent->parent, m);
    ck_assert_str_eq(ls_conf_type(ls_conf_child(m, "format")), "json");
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_args)
{
    struct ls_conf *c = load("<match a.** b.*>\n</match>\n"
                             "<match>\n</match>\n"
                             "<match   {x,y}.z   >\n</match>\n"
                             "<worker 0-3>\n</worker>\n"
                             "<label @ERROR>\n</label>\n"
                             "<match 'quoted arg'>\n</match>\n");
    struct ls_conf_section *s = c->root->children;
    ck_assert_str_eq(s->arg, "a.** b.*");
    ck_assert_str_eq(s->next->arg, "");
    ck_assert_str_eq(s->next->next->arg, "{x,y}.z");
    ck_assert_str_eq(s->next->next->next->arg, "0-3");
    ck_assert_str_eq(s->next->next->next->next->arg, "@ERROR");
    ck_assert_str_eq(s->next->next->next->next->next->arg, "quoted arg");
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_repeated_key_last_wins)
{
    struct ls_conf *c = load("<source>\n  tag first\n  tag second\n</source>\n");
    struct ls_conf_section *s = ls_conf_child(c->root, "source");
    ck_assert_str_eq(ls_conf_get(s, "tag"), "second");
    ck_assert_int_eq(ls_conf_get_param(s, "tag")->line, 3);
    /* both occurrences count as read */
    ck_assert_int_eq(ls_conf_warn_unused(c->root), 0);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_reserved_keys)
{
    struct ls_conf *c;

    assert_err("@foo bar\n", "t.conf:1: '@foo': '@' is the system reserved prefix");
    assert_err("<match a>\n  @type x\n  @bogus 1\n</match>\n", "t.conf:3: '@bogus'");
    assert_err("<source>\n  @path x\n</source>\n", "t.conf:2: '@path'");
    c = load("<match a>\n  @type s3\n  @id out1\n  @label @X\n  @log_level debug\n"
             "  <buffer>\n    @deep ok\n  </buffer>\n</match>\n");
    ck_assert_str_eq(ls_conf_get(ls_conf_child(ls_conf_child(c->root, "match"), "buffer"), "@deep"),
                     "ok");
    ck_assert_msg(strstr(logbuf, "t.conf:7: '@deep'") != NULL, "no warning: %s", logbuf);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_v012_type)
{
    struct ls_conf *c = load("<match nginx.access>\n type s3\n aws_sec_key YYYY\n</match>\n"
                             "<match b>\n @type file\n type ignored\n</match>\n");
    struct ls_conf_section *m = ls_conf_child(c->root, "match");
    ck_assert_str_eq(ls_conf_type(m), "s3");
    ck_assert_msg(strstr(logbuf, "t.conf:2: 'type' is deprecated") != NULL, "log: %s", logbuf);
    logbuf[0] = '\0';
    ck_assert_str_eq(ls_conf_type(m), "s3");   /* warned once, not on every lookup */
    ck_assert_str_eq(logbuf, "");
    ck_assert_str_eq(ls_conf_type(m->next), "file");
    ck_assert_msg(strstr(logbuf, "deprecated") == NULL, "unexpected warning: %s", logbuf);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_warn_unused)
{
    struct ls_conf *c = load("<match a.**>\n"
                             "  @type s3\n"
                             "  @id x\n"
                             "  log_level info\n"
                             "  used 1\n"
                             "  typo_param 2\n"
                             "  <buffer>\n"
                             "    flush_intervall 10s\n"
                             "  </buffer>\n"
                             "</match>\n");
    struct ls_conf_section *m = ls_conf_child(c->root, "match");
    ck_assert_str_eq(ls_conf_get(m, "used"), "1");
    ck_assert_int_eq(ls_conf_warn_unused(c->root), 2);
    ck_assert_msg(strstr(logbuf, "t.conf:6: parameter 'typo_param' in <match a.**> is not used"),
                  "log: %s", logbuf);
    ck_assert_msg(strstr(logbuf, "t.conf:8: parameter 'flush_intervall' in <buffer> is not used"),
                  "log: %s", logbuf);
    ck_assert_msg(strstr(logbuf, "'used'") == NULL, "log: %s", logbuf);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_crlf_and_bom)
{
    struct ls_conf *c = load("\xEF\xBB\xBF<source>\r\n"
                             "  @type tail\r\n"
                             "  path /a b  \r\n"
                             "  q \"x\" # c\r\n"
                             "  flag\r\n"
                             "  ml \"a\r\nb\"\r\n"
                             "</source>\r\n");
    struct ls_conf_section *s = ls_conf_child(c->root, "source");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(ls_conf_get(s, "@type"), "tail");
    ck_assert_str_eq(ls_conf_get(s, "path"), "/a b");
    ck_assert_str_eq(ls_conf_get(s, "q"), "x");
    ck_assert_str_eq(ls_conf_get(s, "flag"), "");
    ck_assert_str_eq(ls_conf_get(s, "ml"), "a\nb");
    ck_assert_int_eq(ls_conf_get_param(s, "flag")->line, 5);
    ls_conf_destroy(c);
    /* a BOM alone is an empty file */
    c = load("\xEF\xBB\xBF");
    ck_assert_ptr_null(c->root->children);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_include_file_glob_relative)
{
    struct ls_conf *c = ls_conf_load_file(DATA "include_main.conf", err, sizeof(err));
    struct ls_conf_section *s;

    ck_assert_msg(c != NULL, "%s", err);
    s = c->root->children;
    /* include inside <source> merged its params; the later 'rate 7' wins */
    ck_assert_str_eq(s->name, "source");
    ck_assert_str_eq(ls_conf_get(s, "tag"), "included.tag");
    ck_assert_str_eq(ls_conf_get(s, "rate"), "7");
    ck_assert_str_eq(ls_conf_get_param(s, "tag")->file, DATA "inc/common_params.conf");
    ck_assert_int_eq(ls_conf_get_param(s, "tag")->line, 2);
    /* glob: alphabetical a, b; c.conf.disabled not matched; empty glob adds nothing */
    s = s->next;
    ck_assert_str_eq(s->arg, "a");
    ck_assert_str_eq(s->file, DATA "inc/glob/a.conf");
    /* relative include from inside a.conf resolves against inc/glob/ */
    ck_assert_str_eq(ls_conf_get(s, "nested_param"), "from_sub");
    s = s->next;
    ck_assert_str_eq(s->arg, "b");
    s = s->next;
    ck_assert_str_eq(s->arg, "last");
    ck_assert_ptr_null(s->next);
    ck_assert_int_eq((int)c->nfiles, 5);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_include_loops)
{
    struct ls_conf *c = ls_conf_load_file(DATA "loop/a.conf", err, sizeof(err));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, DATA "loop/b.conf:2: include loop: b.conf includes") != NULL, "%s", err);
    c = ls_conf_load_file(DATA "loop/self.conf", err, sizeof(err));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, DATA "loop/self.conf:3: include loop: self.conf includes itself") != NULL,
                  "%s", err);
}
END_TEST

START_TEST(test_include_missing_and_errors)
{
    struct ls_conf *c = ls_conf_load_file(DATA "missing_plain.conf", err, sizeof(err));

    /* fluentd: Dir.glob finds nothing -> nothing happens (we add a warning) */
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(c->root->children->arg, "x");
    ck_assert_msg(strstr(logbuf, "missing_plain.conf:1: @include") != NULL, "log: %s", logbuf);
    ls_conf_destroy(c);

    /* an error inside an included file names that file and line */
    c = ls_conf_load_file(DATA "bad_include.conf", err, sizeof(err));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, DATA "inc/broken.conf:") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "unterminated double-quoted string started at line 3") != NULL, "%s", err);

    assert_err("a 1\n@include https://example.com/fluent.conf\n",
               "t.conf:2: @include https://example.com/fluent.conf: remote includes are not supported");
    assert_err("@include\n", "t.conf:1: @include needs a path");

    /* deprecated 'include' at root works */
    logbuf[0] = '\0';
    c = ls_conf_load_file(DATA "old_include.conf", err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(ls_conf_get(c->root, "tag"), "included.tag");
    ck_assert_msg(strstr(logbuf, "deprecated") != NULL, "log: %s", logbuf);
    ls_conf_destroy(c);

    /* but inside a section 'include' is a plain parameter */
    c = load("<match a>\n  include yes\n</match>\n");
    ck_assert_str_eq(val(c, "match", "include"), "yes");
    ls_conf_destroy(c);

    c = ls_conf_load_file(DATA "no_such_main.conf", err, sizeof(err));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "no_such_main.conf") != NULL, "%s", err);
}
END_TEST

START_TEST(test_include_from_string_base)
{
    /* load_string: the name is the base for relative includes */
    const char *t = "<source>\n  @include inc/common_params.conf\n</source>\n";
    struct ls_conf *c = ls_conf_load_string(DATA "virtual.conf", t, strlen(t), err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(val(c, "source", "rate"), "5");
    ls_conf_destroy(c);

    /* a glob that catches a backup copy still includes it (as fluentd) but warns */
    t = "@include inc/bak/*.conf\n";
    c = ls_conf_load_string(DATA "virtual.conf", t, strlen(t), err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(c->root->params->key, "from_bak");   /* "a.bak.conf" < "a.conf" */
    ck_assert_str_eq(c->root->params->next->key, "from_a");
    ck_assert_msg(strstr(logbuf, "looks like a backup copy") != NULL, "log: %s", logbuf);
    ls_conf_destroy(c);

    /* a glob matching directories is an include error, not a crash */
    t = "@include inc/*/\n";
    c = ls_conf_load_string(DATA "virtual.conf", t, strlen(t), err, sizeof(err));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "virtual.conf:1: include error: cannot read") != NULL, "%s", err);
}
END_TEST

static void collect(const char *s, void *arg)
{
    struct ls_buf_like {
        char *p;
        size_t n;
    } *b = arg;
    size_t l = strlen(s);
    b->p = ls_realloc(b->p, b->n + l + 1);
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

START_TEST(test_set_add_child_dump_roundtrip)
{
    struct ls_conf *c = load("<match a>\n  @type s3\n  path \" lead\"\n  re \"a #b\"\n"
                             "  e \"#{'#'}{x}\"\n  nl \"a\nb\"\n  j [1,2]\n  flag\n</match>\n");
    struct ls_conf_section *m = ls_conf_child(c->root, "match");
    struct ls_conf_section *b = ls_conf_add_child(m, "buffer", "time");
    struct { char *p; size_t n; } out1 = { NULL, 0 }, out2 = { NULL, 0 };
    struct ls_conf *c2;

    ls_conf_set(b, "timekey", "3600", NULL, 0);
    ck_assert_str_eq(ls_conf_get(b, "timekey"), "3600");
    ck_assert_ptr_eq(b->parent, m);
    ck_assert_str_eq(ls_conf_child(m, "buffer")->arg, "time");
    ck_assert_str_eq(ls_conf_get(m, "e"), "#{x}");
    ls_conf_dump(c->root, 0, collect, &out1);
    c2 = ls_conf_load_string("dump.conf", out1.p, out1.n, err, sizeof(err));
    ck_assert_msg(c2 != NULL, "re-parse of dump failed: %s\n%s", err, out1.p);
    ls_conf_dump(c2->root, 0, collect, &out2);
    ck_assert_str_eq(out1.p, out2.p);
    m = ls_conf_child(c2->root, "match");
    ck_assert_str_eq(ls_conf_get(m, "path"), " lead");
    ck_assert_str_eq(ls_conf_get(m, "re"), "a #b");
    ck_assert_str_eq(ls_conf_get(m, "e"), "#{x}");
    ck_assert_str_eq(ls_conf_get(m, "nl"), "a\nb");
    ck_assert_str_eq(ls_conf_get(ls_conf_child(m, "buffer"), "timekey"), "3600");
    ls_free(out1.p);
    ls_free(out2.p);
    ls_conf_destroy(c2);
    ls_conf_destroy(c);
}
END_TEST

START_TEST(test_binary_garbage)
{
    /* NUL bytes and high bytes must not crash or read past the end */
    static const char junk[] = "<a\0b>\n k \"\0\"\n\xff\xfe <\x01>";
    struct ls_conf *c = ls_conf_load_string("j.conf", junk, sizeof(junk) - 1, err, sizeof(err));
    ls_conf_destroy(c);
    {
        /* deep nesting is refused, not a stack overflow */
        char *deep = ls_malloc(200 * 4 + 1);
        size_t o = 0;
        for (int i = 0; i < 200; i++) {
            memcpy(deep + o, "<a>\n", 4);
            o += 4;
        }
        deep[o] = '\0';
        c = ls_conf_load_string("d.conf", deep, o, err, sizeof(err));
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, "nested too deeply") != NULL, "%s", err);
        ls_free(deep);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("conf");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_basic_tree);
    tcase_add_test(tc, test_empty_and_comments_only);
    tcase_add_test(tc, test_comments_everywhere);
    tcase_add_test(tc, test_unquoted_values);
    tcase_add_test(tc, test_double_quoted);
    tcase_add_test(tc, test_multiline_double_quoted);
    tcase_add_test(tc, test_double_quoted_errors);
    tcase_add_test(tc, test_nul_byte_refused);
    tcase_add_test(tc, test_single_quoted);
    tcase_add_test(tc, test_json_values);
    tcase_add_test(tc, test_json_errors);
    tcase_add_test(tc, test_env_interpolation);
    tcase_add_test(tc, test_env_errors);
    tcase_add_test(tc, test_ruby_numbers);
    tcase_add_test(tc, test_interpolate_api);
    tcase_add_test(tc, test_element_errors);
    tcase_add_test(tc, test_nested_three_deep);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_repeated_key_last_wins);
    tcase_add_test(tc, test_reserved_keys);
    tcase_add_test(tc, test_v012_type);
    tcase_add_test(tc, test_warn_unused);
    tcase_add_test(tc, test_crlf_and_bom);
    tcase_add_test(tc, test_include_file_glob_relative);
    tcase_add_test(tc, test_include_loops);
    tcase_add_test(tc, test_include_missing_and_errors);
    tcase_add_test(tc, test_include_from_string_base);
    tcase_add_test(tc, test_set_add_child_dump_roundtrip);
    tcase_add_test(tc, test_binary_garbage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
