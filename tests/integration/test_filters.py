"""td-agent's bundled filters: rewrite_tag_filter, filter parser, record_modifier,
filter stdout, record_reformer.

Each test runs the real binary with --oneshot on sample records and checks the
records (and tags) that reach stdout against the plugins' documented and
source-read semantics (/work/shared/reference/fidelity.md sections 1-4).
"""
import json, os, re, socket
from lstest import conf, run, tmpdir

def tmp_log(name, data):
    path = os.path.join(tmpdir(), name)
    with open(path, "wb") as f:
        f.write(data)
    return path

def stdout_records(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4} (\S+): (\{.*\})$", line)
        if m:
            out.append((m.group(1), json.loads(m.group(2))))
    return out

def oneshot(config_text, timeout=60):
    path = conf(config_text)
    p = run(["-c", path, "--oneshot"], timeout=timeout)
    return p, stdout_records(p.stdout)

def dry_run(config_text):
    return run(["-c", conf(config_text), "--dry-run"])

def config_error(config_text, pattern):
    """--dry-run fails with a message matching pattern (which names file:line)."""
    p = dry_run(config_text)
    assert p.returncode == 1 and re.search(pattern, p.stderr), p.stderr

def sample(tag, records, extra=""):
    return """
<source>
  @type sample
  tag %s
  sample %s
  count %d
  %s
</source>
""" % (tag, json.dumps(records), len(records), extra)

STDOUT_ALL = "<match **>\n  @type stdout\n</match>\n"

# ---- rewrite_tag_filter ----

def test_rewrite_tag_filter_backreferences_and_tag_placeholders():
    p, recs = oneshot(sample("app.web.access", [{"status": "503", "msg": "a"},
                                                {"status": "200", "msg": "b"}]) + """
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key status
    pattern /^(5)(\\d)(\\d)$/
    tag err.$1xx.$3.${tag}.${tag_parts[1]}.__TAG__.${hostname}.__HOSTNAME__.$9
  </rule>
  <rule>
    key status
    pattern /^2\\d\\d$/
    tag ok.${tag_parts[2]}
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    h = socket.gethostname()
    assert recs == [
        ("err.5xx.3.app.web.access.web.app.web.access.%s.%s." % (h, h),
         {"status": "503", "msg": "a"}),
        ("ok.access", {"status": "200", "msg": "b"}),
    ], recs

def test_rewrite_tag_filter_tag_parts_double_underscore_form_stays_literal():
    # the plugin's token rule never matches __TAG_PARTS[N]__ (brackets are not [A-Z_])
    p, recs = oneshot(sample("a.b", [{"k": "v"}]) + """
<match a.b>
  @type rewrite_tag_filter
  <rule>
    key k
    pattern /v/
    tag x.__TAG_PARTS[0]__
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("x.__TAG_PARTS[0]__", {"k": "v"})], recs
    assert "__TAG_PARTS[N]__" in p.stderr

def test_rewrite_tag_filter_record_accessor_key():
    p, recs = oneshot(sample("k8s", [{"kubernetes": {"namespace_name": "prod", "labels": ["x", "y"]}},
                                     {"kubernetes": {"other": 1}}]) + """
<match k8s>
  @type rewrite_tag_filter
  <rule>
    key $.kubernetes.namespace_name
    pattern /^(.+)$/
    tag ns.$1
  </rule>
  <rule>
    key $['kubernetes']['other']
    pattern /^1$/
    tag other.one
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert [t for t, _ in recs] == ["ns.prod", "other.one"], recs

def test_rewrite_tag_filter_invert_missing_key_and_no_rule_drops():
    p, recs = oneshot(sample("in", [{"level": "info"}, {"msg": "no level"}, {"level": "debug"}]) + """
<match in>
  @type rewrite_tag_filter
  <rule>
    key level
    pattern /^info$/
    tag level.$0info
  </rule>
  <rule>
    key level
    pattern /^(debug|info)$/
    invert true
    tag other.$1
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    # $0 is not a group (""), an inverted rule leaves $N as written, debug fires no rule: dropped
    assert recs == [("level.info", {"level": "info"}), ("other.$1", {"msg": "no level"})], recs

def test_rewrite_tag_filter_same_tag_is_dropped():
    p, recs = oneshot(sample("same", [{"a": "x"}]) + """
<match same>
  @type rewrite_tag_filter
  <rule>
    key a
    pattern /x/
    tag same
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [], recs

def test_rewrite_tag_filter_remove_tag_prefix_and_capitalize():
    p, recs = oneshot(sample("app.web.x", [{"m": "mAIL"}]) + """
<match app.**>
  @type rewrite_tag_filter
  remove_tag_prefix app
  capitalize_regex_backreference yes
  <rule>
    key m
    pattern /^(\\w+)$/
    tag $1.${tag}.${tag_parts[0]}
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("Mail.web.x.web", {"m": "mAIL"})], recs

def test_rewrite_tag_filter_reenters_routing_from_the_top():
    # the re-emitted record passes the top-level filters again, under its new tag
    p, recs = oneshot(sample("raw", [{"v": "a"}]) + """
<filter **>
  @type record_transformer
  <record>
    seen_as ${tag}
  </record>
</filter>
<match raw>
  @type rewrite_tag_filter
  <rule>
    key v
    pattern /^(a)$/
    tag cooked.$1
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("cooked.a", {"v": "a", "seen_as": "cooked.a"})], recs

def test_rewrite_tag_filter_in_label_stays_in_label_and_rule_label_moves():
    p, recs = oneshot(sample("in", [{"k": "stay"}, {"k": "move"}], "@label @A") + """
<label @A>
  <filter **>
    @type record_transformer
    <record>
      via A
    </record>
  </filter>
  <match in>
    @type rewrite_tag_filter
    <rule>
      key k
      pattern /^stay$/
      tag a.stayed
    </rule>
    <rule>
      key k
      pattern /^move$/
      tag b.moved
      label @B
    </rule>
  </match>
  <match a.**>
    @type stdout
  </match>
</label>
<label @B>
  <match b.**>
    @type stdout
  </match>
</label>
<match **>
  @type null
</match>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("a.stayed", {"k": "stay", "via": "A"}),
                    ("b.moved", {"k": "move", "via": "A"})], recs

def test_rewrite_tag_filter_loop_is_stopped_and_sent_to_error_label():
    p, recs = oneshot(sample("app", [{"level": "x"}, {"level": "y"}]) + """
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key level
    pattern /(.+)/
    tag ${tag}.$1
  </rule>
</match>
<label @ERROR>
  <match **>
    @type stdout
  </match>
</label>
""", timeout=30)
    assert p.returncode == 0, p.stderr
    assert "routing loop" in p.stderr
    assert [r for _, r in recs] == [{"level": "x"}, {"level": "y"}], recs
    assert all(t.startswith("app.x.x.x") or t.startswith("app.y.y.y") for t, _ in recs), recs

def test_rewrite_tag_filter_two_rewriters_ping_pong_loop_is_stopped():
    p, recs = oneshot(sample("a", [{"v": "1"}]) + """
<match a>
  @type rewrite_tag_filter
  <rule>
    key v
    pattern /1/
    tag b
  </rule>
</match>
<match b>
  @type rewrite_tag_filter
  <rule>
    key v
    pattern /1/
    tag a
  </rule>
</match>
""", timeout=30)
    assert p.returncode == 0, p.stderr
    assert "routing loop" in p.stderr and "dump an error event" in p.stderr, p.stderr

def test_rewrite_tag_filter_v012_rewriterule_form():
    p, recs = oneshot(sample("td", [{"domain": "www.example.com", "code": "404"},
                                    {"domain": "api.example.com", "code": "200"},
                                    {"domain": "other", "code": "200"}]) + """
<match td>
  type rewrite_tag_filter
  rewriterule2 code !^200$ notok.$1
  rewriterule1 domain ^(www|api)\\.example\\.com$ site.$1
  rewriterule3 domain "^other$" misc
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert [t for t, _ in recs] == ["site.www", "site.api", "misc"], recs

def test_rewrite_tag_filter_config_errors_name_file_and_line():
    config_error("<match a>\n  @type rewrite_tag_filter\n</match>\n",
                 r"logship\.conf:1: missing rewriterules")
    config_error("<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    tag b\n  </rule>\n</match>\n",
                 r"logship\.conf:3: 'pattern' parameter is required")
    config_error("<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern /(x/\n    tag b\n  </rule>\n</match>\n",
                 r"logship\.conf:3: invalid regexp")
    p = dry_run("<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern /x/\n    tag b\n  </rule>\n"
                "  <rule>\n    key a\n    pattern /x/\n    tag c\n  </rule>\n</match>\n")
    assert p.returncode == 1 and re.search(r"logship\.conf:8: duplicated rewriterules", p.stderr), p.stderr
    config_error("<match a>\n  @type rewrite_tag_filter\n  rewriterule1 a /x/ b\n  rewriterule3 a /y/ c\n</match>\n",
                 r"logship\.conf:4: jump of rewriterule index found")
    config_error("<match a>\n  @type rewrite_tag_filter\n  rewriterule1 onlykey\n</match>\n",
                 r"logship\.conf:3: missing values at rewriterule1")

def test_rewrite_tag_filter_add_tag_prefix_is_ignored_as_fluentd_does():
    p, recs = oneshot(sample("a", [{"k": "v"}]) + """
<match a>
  @type rewrite_tag_filter
  add_tag_prefix pre
  <rule>
    key k
    pattern /v/
    tag new
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("new", {"k": "v"})], recs
    assert re.search(r"logship\.conf:\d+: rewrite_tag_filter has no 'add_tag_prefix'", p.stderr), p.stderr

# ---- filter parser ----

def stdout_times(text):
    return [l.split(" ")[0] + " " + l.split(" ")[1] for l in text.splitlines()
            if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4} \S+: \{", l)]

NGINX_LINE = '127.0.0.1 - - [21/Nov/2026:10:00:00 +0900] "GET /a HTTP/1.1" 200 12 "-" "curl"'

def test_filter_parser_replaces_record_with_parsed_fields_and_their_time():
    p, recs = oneshot(sample("web", [{"message": NGINX_LINE, "other": "x"}]) + """
<filter web>
  @type parser
  key_name message
  <parse>
    @type nginx
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("web", {"remote": "127.0.0.1", "host": "-", "user": "-", "method": "GET",
                             "path": "/a", "code": "200", "size": "12", "referer": "-",
                             "agent": "curl"})], recs
    assert stdout_times(p.stdout) == ["2026-11-21 01:00:00.000000000"], p.stdout

def test_filter_parser_reserve_time_keeps_the_original_time():
    p, recs = oneshot(sample("web", [{"message": NGINX_LINE}]) + """
<filter web>
  @type parser
  key_name message
  reserve_time true
  <parse>
    @type nginx
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs and not stdout_times(p.stdout)[0].startswith("2026-11-21 01:00:00"), p.stdout

def test_filter_parser_reserve_data_merges_and_remove_key_name_field():
    p, recs = oneshot(sample("j", [{"log": '{"a":1,"keep":"parsed"}', "keep": "orig", "b": 2}]) + """
<filter j>
  @type parser
  key_name log
  reserve_data true
  remove_key_name_field true
  <parse>
    @type json
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("j", {"keep": "parsed", "b": 2, "a": 1})], recs

def test_filter_parser_inject_key_prefix_and_hash_value_field():
    p, recs = oneshot(sample("j", [{"log": '{"a":1,"s":"x"}', "o": 1}]) + """
<filter j>
  @type parser
  key_name log
  reserve_data true
  inject_key_prefix p_
  hash_value_field parsed
  <parse>
    @type json
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("j", {"log": '{"a":1,"s":"x"}', "o": 1, "parsed": {"p_a": 1, "p_s": "x"}})], recs

def test_filter_parser_unmatched_goes_to_error_label_and_is_dropped():
    p, recs = oneshot(sample("r", [{"m": "abc"}, {"m": "123"}, {"x": 1}]) + """
<filter r>
  @type parser
  key_name m
  <parse>
    @type regexp
    expression /^(?<n>\\d+)$/
  </parse>
</filter>
<match r>
  @type stdout
</match>
<label @ERROR>
  <match r>
    @type stdout
  </match>
</label>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("r", {"m": "abc"}), ("r", {"n": "123"}), ("r", {"x": 1})], recs

def test_filter_parser_unmatched_with_reserve_data_passes_unchanged_and_error_off():
    p, recs = oneshot(sample("r", [{"m": "abc"}, {"x": 1}]) + """
<filter r>
  @type parser
  key_name m
  reserve_data true
  hash_value_field h
  emit_invalid_record_to_error false
  <parse>
    @type regexp
    expression /^(?<n>\\d+)$/
  </parse>
</filter>
<match r>
  @type stdout
</match>
<label @ERROR>
  <match **>
    @type stdout
  </match>
</label>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("r", {"m": "abc", "h": {}}), ("r", {"x": 1, "h": {}})], recs

def test_filter_parser_record_accessor_key_name():
    p, recs = oneshot(sample("k", [{"kubernetes": {"log": "k=v a=b"}}]) + """
<filter k>
  @type parser
  key_name $.kubernetes.log
  <parse>
    @type ltsv
    delimiter " "
    label_delimiter =
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("k", {"k": "v", "a": "b"})], recs

def test_filter_parser_v012_flat_format():
    p, recs = oneshot(sample("v", [{"message": "2026-11-21 10:00:00 hello"}]) + """
<filter v>
  type parser
  key_name message
  format /^(?<time>[^ ]+ [^ ]+) (?<msg>.*)$/
  time_format %Y-%m-%d %H:%M:%S
  utc true
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("v", {"msg": "hello"})], recs
    assert stdout_times(p.stdout) == ["2026-11-21 10:00:00.000000000"], p.stdout

def test_filter_parser_config_errors_name_file_and_line():
    config_error("<filter a>\n  @type parser\n  key_name m\n</filter>\n<match **>\n  @type null\n</match>\n",
                 r"logship\.conf:1: <parse> section is required")
    config_error("<filter a>\n  @type parser\n  <parse>\n    @type json\n  </parse>\n</filter>\n",
                 r"logship\.conf:1: 'key_name' parameter is required")
    config_error("<filter a>\n  @type parser\n  key_name m\n  <parse>\n    @type nosuch\n  </parse>\n</filter>\n",
                 r"logship\.conf:\d+: .*nosuch")

# ---- record_modifier ----

def test_record_modifier_record_placeholders_keep_types_and_see_earlier_fields():
    p, recs = oneshot(sample("web.app", [{"n": 5, "s": "x", "o": {"a": {"b": "deep"}}}]) + """
<filter web.**>
  @type record_modifier
  <record>
    lit plain text $ {x}
    t ${tag}
    p ${tag_parts[1]}
    neg ${tag_parts[-1]}
    far ${tag_parts[9]}
    copy ${record['n']}
    text n=${record["n"]} s=${record['s']}
    deep ${record['o']['a']['b']}
    missing ${record['nope']}
    later ${record['copy']}
  </record>
  <record>
    t2 ${tag}-${time}
  </record>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    r = recs[0][1]
    assert r["lit"] == "plain text $ {x}" and r["t"] == "web.app" and r["p"] == "app", r
    assert r["neg"] == "app" and r["far"] is None, r
    assert r["copy"] == 5 and r["text"] == "n=5 s=x" and r["deep"] == "deep", r
    assert r["missing"] is None and r["later"] == 5, r
    assert re.match(r"^web\.app-\d{10}$", r["t2"]), r

def test_record_modifier_time_alone_is_integer_seconds():
    p, recs = oneshot(sample("t", [{"a": 1}]) + """
<filter t>
  @type record_modifier
  <record>
    at ${time}
  </record>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert isinstance(recs[0][1]["at"], int) and recs[0][1]["at"] > 1700000000, recs

def test_record_modifier_remove_keys_with_accessor():
    p, recs = oneshot(sample("r", [{"a": 1, "b": 2, "c": {"d": 1, "e": 2}}]) + """
<filter r>
  @type record_modifier
  remove_keys a, $.c.d
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("r", {"b": 2, "c": {"e": 2}})], recs

def test_record_modifier_whitelist_keys_keeps_record_keys():
    p, recs = oneshot(sample("w", [{"a": 1, "b": 2, "c": 3}]) + """
<filter w>
  @type record_modifier
  whitelist_keys a,nothere
  <record>
    added yes
  </record>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("w", {"a": 1, "added": "yes"})], recs

def test_record_modifier_replace_with_backreferences():
    p, recs = oneshot(sample("x", [{"msg": "user=alice id=42 user=bob", "n": 1}]) + """
<filter x>
  @type record_modifier
  <replace>
    key msg
    expression /user=(?<name>\\w+)/
    replace u:\\k<name>/\\1
  </replace>
  <replace>
    key absent
    expression /x/
    replace y
  </replace>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("x", {"msg": "u:alice/alice id=42 u:bob/bob", "n": 1})], recs

def test_record_modifier_replace_on_a_number_goes_to_error():
    p, recs = oneshot(sample("x", [{"n": 1}]) + """
<filter x>
  @type record_modifier
  <replace>
    key n
    expression /1/
    replace 2
  </replace>
</filter>
<match x>
  @type null
</match>
<label @ERROR>
  <match **>
    @type stdout
  </match>
</label>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("x", {"n": 1})], recs

def test_record_modifier_char_encoding_converts_strings():
    # the bytes of "Nihon" in Shift_JIS, read as they are by tail
    d = tmp_log("sjis.log", b"\x93\xfa\x96\x7b\n")
    p, recs = oneshot("""
<source>
  @type tail
  path %s
  read_from_head true
  tag sj
  <parse>
    @type none
  </parse>
</source>
<filter sj>
  @type record_modifier
  char_encoding Shift_JIS:UTF-8
</filter>
""" % d + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("sj", {"message": "\u65e5\u672c"})], recs

def test_record_modifier_output_form_reemits_under_tag():
    p, recs = oneshot(sample("in", [{"a": 1}]) + """
<match in>
  @type record_modifier
  tag out.modified
  <record>
    from ${tag}
  </record>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("out.modified", {"a": 1, "from": "in"})], recs

def test_record_modifier_config_errors_name_file_and_line():
    config_error("<filter a>\n  @type record_modifier\n  <record>\n    h ${hostname}\n  </record>\n</filter>\n",
                 r"logship\.conf:4: record_modifier has no hostname")
    config_error("<filter a>\n  @type record_modifier\n  <record>\n    h ${record['a'].upcase}\n  </record>\n</filter>\n",
                 r"logship\.conf:4: .*Ruby")
    config_error("<filter a>\n  @type record_modifier\n  remove_keys a\n  whitelist_keys b\n</filter>\n",
                 r"logship\.conf:4: remove_keys and whitelist_keys are exclusive")
    config_error("<filter a>\n  @type record_modifier\n  char_encoding NOPE-1:utf-8\n</filter>\n",
                 r"logship\.conf:3: ")
    config_error("<filter a>\n  @type record_modifier\n  prepare_value @x = 1\n</filter>\n",
                 r"logship\.conf:3: prepare_value")
    p = dry_run("<filter a>\n  @type record_modifier\n  allowlist_keys a\n</filter>\n<match **>\n  @type null\n</match>\n")
    assert p.returncode == 0 and re.search(r"logship\.conf:3: record_modifier has no 'allowlist_keys'", p.stderr), p.stderr

# ---- filter stdout ----

def test_filter_stdout_prints_to_the_log_and_passes_the_record():
    p, recs = oneshot(sample("s.x", [{"a": 1, "b": "two"}]) + """
<filter s.**>
  @type stdout
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("s.x", {"a": 1, "b": "two"})], recs
    assert re.search(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4} s\.x: \{"a":1,"b":"two"\}$',
                     p.stderr, re.M), p.stderr

def test_filter_stdout_output_type_and_inject_only_in_the_print():
    p, recs = oneshot(sample("s", [{"a": 1}]) + """
<filter s>
  @type stdout
  output_type ltsv
  include_tag_key true
</filter>
<filter s>
  @type stdout
  <format>
    @type json
  </format>
  <inject>
    tag_key the_tag
  </inject>
</filter>
<filter s>
  @type stdout
  format single_value
  message_key a
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("s", {"a": 1})], recs
    assert re.search(r" s: a:1\ttag:s$", p.stderr, re.M), p.stderr
    assert re.search(r'^\{"a":1,"the_tag":"s"\}$', p.stderr, re.M), p.stderr
    assert re.search(r"^1$", p.stderr, re.M), p.stderr

def test_filter_stdout_writes_to_the_log_file_of_dash_o():
    d = tmpdir()
    log = os.path.join(d, "logship.log")
    path = conf(sample("s", [{"k": "v"}]) + "<filter s>\n  @type stdout\n</filter>\n<match s>\n  @type null\n</match>\n")
    p = run(["-c", path, "--oneshot", "-o", log])
    assert p.returncode == 0, p.stderr
    assert re.search(r' s: \{"k":"v"\}$', open(log).read(), re.M)

# ---- record_reformer ----

def test_record_reformer_tag_placeholders_and_flat_fields():
    p, recs = oneshot(sample("app.web.x", [{"k": "v", "n": 3}]) + """
<match app.**>
  @type record_reformer
  tag new.${tag_prefix[1]}.${tag_suffix[1]}.${tags[2]}.${tag_parts[-1]}
  flatfield ${k}-${record["n"]}
  host ${hostname}
  nested {"a":[1,2]}
  <record>
    flatfield from_record
    n_str ${n}
  </record>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("new.app.web.web.x.x.x",
                     {"k": "v", "n": 3, "flatfield": "from_record", "host": socket.gethostname(),
                      "nested": {"a": [1, 2]}, "n_str": "3"})], recs

def test_record_reformer_auto_typecast_renew_record_keep_keys_and_remove_keys():
    p, recs = oneshot(sample("r", [{"a": 1, "b": {"c": 2}, "gone": "x", "ts": "1700000000x"}]) + """
<match r>
  @type record_reformer
  tag out
  renew_record true
  keep_keys a,missing,ts
  auto_typecast true
  renew_time_key ts
  remove_keys ts
  <record>
    b_copy ${b}
    a_text a=${a}
  </record>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("out", {"a": 1, "missing": None, "b_copy": {"c": 2}, "a_text": "a=1"})], recs
    assert stdout_times(p.stdout) == ["2023-11-14 22:13:20.000000000"], p.stdout

def test_record_reformer_output_tag_alias_and_reentry_into_label():
    p, recs = oneshot(sample("in", [{"a": 1}], "@label @L") + """
<label @L>
  <filter moved>
    @type record_transformer
    <record>
      seen yes
    </record>
  </filter>
  <match in>
    @type record_reformer
    output_tag moved
  </match>
  <match moved>
    @type stdout
  </match>
</label>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("moved", {"a": 1, "seen": "yes"})], recs
    assert re.search(r"logship\.conf:\d+: parameter 'output_tag' is deprecated", p.stderr), p.stderr

def test_record_reformer_config_errors_name_file_and_line():
    config_error("<match a>\n  @type record_reformer\n</match>\n",
                 r"logship\.conf:1: `tag` must be specified")
    config_error("<match a>\n  @type record_reformer\n  tag b\n  keep_keys x\n</match>\n",
                 r"logship\.conf:4: `renew_record` must be true")
    config_error("<match a>\n  @type record_reformer\n  tag b\n  x ${record['a'].map { |v| v * 2 }}\n"
                 "</match>\n", r"logship\.conf:4: .*Ruby")

def test_rewrite_tag_filter_match_label_sends_reemits_into_that_label():
    # fluentd's event_emitter: an output's own @label is where router.emit goes
    p, recs = oneshot(sample("a", [{"k": "v"}]) + """
<match a>
  @type rewrite_tag_filter
  @label @X
  <rule>
    key k
    pattern /v/
    tag b
  </rule>
</match>
<match b>
  @type null
</match>
<label @X>
  <match b>
    @type stdout
  </match>
</label>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("b", {"k": "v"})], recs

# ---- all of them in one td-agent file ----

def test_td_agent_filters_example_runs():
    d = tmpdir()
    log = os.path.join(d, "access.log")
    with open(log, "w") as f:
        f.write('192.0.2.1 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 503 1 "-" "curl/8"\n'
                '192.0.2.2 - bob [21/Nov/2026:10:00:01 +0000] "GET /a HTTP/1.1" 200 1 "-" "Mozilla/5.0"\n')
    env = dict(os.environ, NGINX_ACCESS_LOG=log, LOGSHIP_STATE_DIR=d)
    p = run(["-c", os.path.join(os.path.dirname(__file__), "..", "..", "conf", "td-agent-filters.conf"),
             "--oneshot"], env=env)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^2026-11-21 10:00:00\.000000000 \+0000 error\.503\.nginx: \{.*\"code\":\"503\"", p.stderr, re.M), p.stderr
    out = {}
    for root, _, files in os.walk(os.path.join(d, "out")):
        for n in files:
            for line in open(os.path.join(root, n)):
                t, tag, rec = line.rstrip("\n").split("\t")
                out[tag] = (t, json.loads(rec))
    h = socket.gethostname()
    assert out["alert.503"] == ("2026-11-21T10:00:00+00:00",
        {"remote": "192.0.2.1", "host": "-", "method": "GET", "path": "/", "code": "503", "size": "1",
         "referer": "-", "agent": "curl/8", "hostname": h, "stream": "alert"}), out
    assert out["ok.nginx.access"] == ("2026-11-21T10:00:01+00:00",
        {"remote": "192.0.2.2", "host": "-", "method": "GET", "path": "/a", "code": "200", "size": "1",
         "referer": "-", "agent": "Mozilla/5.0", "browser": "Mozilla", "hostname": h, "stream": "ok"}), out

def test_copies_of_one_record_rewritten_into_one_buffered_output_are_all_kept_once():
    # copy + two rewrite_tag_filter stores whose tags meet again in one file output: each
    # copy is a record of its own (fluentd writes both), and a second run of the same
    # file (pos_file) writes nothing again
    d = tmpdir()
    log = os.path.join(d, "in.log")
    with open(log, "w") as f:
        f.write('{"v":"a"}\n{"v":"b"}\n')
    text = """
<source>
  @type tail
  path %(d)s/in.log
  pos_file %(d)s/in.pos
  read_from_head true
  tag raw
  <parse>
    @type json
  </parse>
</source>
<match raw>
  @type copy
  <store>
    @type rewrite_tag_filter
    <rule>
      key v
      pattern /(.+)/
      tag one.$1
    </rule>
  </store>
  <store>
    @type rewrite_tag_filter
    <rule>
      key v
      pattern /(.+)/
      tag two.$1
    </rule>
  </store>
</match>
<match one.** two.**>
  @type file
  path %(d)s/out/all
  append true
  <format>
    @type json
  </format>
  <inject>
    tag_key tag
  </inject>
  <buffer>
    @type file
    path %(d)s/buf
  </buffer>
</match>
""" % {"d": d}
    path = conf(text, d)
    for _ in range(2):
        p = run(["-c", path, "--oneshot"])
        assert p.returncode == 0, p.stderr
    got = []
    for root, _, files in os.walk(os.path.join(d, "out")):
        for n in files:
            got += [json.loads(l)["tag"] for l in open(os.path.join(root, n))]
    assert sorted(got) == ["one.a", "one.b", "two.a", "two.b"], got

# ---- route (fluent-plugin-route 1.x) ----

def test_route_prefixes_copy_fall_through_and_labels():
    """The plugin's README examples, checked record by record: the plugin-level prefixes run
    first, routes match the rewritten tag in order, `copy` goes on to the next matching route,
    a route's own prefixes and @label apply to what it emits, and a tag no route matches is
    dropped. The tag rewrite is the plugin's tag_modifier: 'worker.' is removed only at the
    start and with its dot ('workers.x' keeps it), and add_tag_prefix applies either way."""
    p, recs = oneshot(sample("worker.a", [{"n": 1}]) + sample("workers.b", [{"n": 2}]) +
                      sample("other.c", [{"n": 3}]) + """
<match worker*.**>
  @type route
  remove_tag_prefix worker
  add_tag_prefix m
  <route m.a>
    add_tag_prefix first
    copy
  </route>
  <route m.**>
    remove_tag_prefix m
    add_tag_prefix second
    @label @BACKUP
  </route>
  <route **>
    add_tag_prefix never
  </route>
</match>
<match other.**>
  @type route
  <route nothing.**>
  </route>
</match>
<label @BACKUP>
  <match **>
    @type stdout
  </match>
</label>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert sorted(recs, key=lambda r: (r[0], r[1]["n"])) == [
        ("first.m.a", {"n": 1}), ("second.a", {"n": 1}), ("second.workers.b", {"n": 2})], recs


def test_route_without_label_reemits_from_the_top_and_refuses_store():
    p, recs = oneshot(sample("in", [{"k": "v"}]) + """
<filter out.**>
  @type record_transformer
  <record>
    seen_by_filter yes
  </record>
</filter>
<match in>
  @type route
  <route>
    add_tag_prefix out
  </route>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert recs == [("out.in", {"k": "v", "seen_by_filter": "yes"})], recs
    config_error(sample("in", [{}]) + """
<match in>
  @type route
  <store>
    @type stdout
  </store>
</match>
""", r"logship\.conf:\d+: <store> section is not available in route plugin")
    config_error(sample("in", [{}]) + """
<match in>
  @type route
  <route **>
    @label @NOWHERE
  </route>
</match>
""", r"logship\.conf:\d+: .*@NOWHERE")


# ---- fluent-plugin-parser's v0.12 out_parser (lib/fluent/plugin/out_parser.rb 0.6) ----

def _times(text):
    return [l.split(" ")[0] + " " + l.split(" ")[1] for l in text.splitlines()
            if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} ", l)]


def test_out_parser_v012_in_copy_add_prefix_and_time():
    # the shape of real td-agent 2 files: type copy / <store> type parser, flat format keys
    recs = [{"message": "time:2024-01-02T03:04:05+09:00\thost:a\tcode:200"},
            {"message": "no labels here"}]
    p, out = oneshot(sample("fwg001.dns", recs) + """
<match fwg001.*>
  type copy
  <store>
    type parser
    format ltsv
    time_key time
    time_format %Y-%m-%dT%H:%M:%S%:z
    add_prefix parsed
    key_name message
  </store>
</match>
<match parsed.**>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    # fluentd v1's ltsv parser skips a pair without a label: {} with the record's own time
    assert out == [("parsed.fwg001.dns", {"host": "a", "code": "200"}),
                   ("parsed.fwg001.dns", {})], out
    t = _times(p.stdout)
    assert t[0] == "2024-01-01 18:04:05.000000000" and not t[1].startswith("2024"), t


def test_out_parser_remove_prefix_reserve_data_inject_prefix_and_missing_key():
    recs = [{"log": 42, "keep": 4},
            {"log": '{"a":1,"b":"x"}', "keep": 1},
            {"log": "not json", "keep": 2},
            {"other": 3, "keep": 3}]
    p, out = oneshot(sample("raw.app", recs) + """
<match raw.**>
  @type parser
  format json
  key_name log
  remove_prefix raw
  reserve_data true
  inject_key_prefix p_
  ignore_key_not_exist true
</match>
<match app>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    assert out == [("app", {"log": '{"a":1,"b":"x"}', "keep": 1, "p_a": 1, "p_b": "x"}),
                   ("app", {"log": "not json", "keep": 2}),
                   ("app", {"other": 3, "keep": 3})], out
    # a number is not parsed at all (Ruby raises): dropped even with reserve_data
    assert "parse failed: log is not a string" in p.stderr, p.stderr
    assert "does not exist" not in p.stderr


def test_out_parser_tag_hash_value_field_time_parse_false_and_drops():
    recs = [{"nokey": 1}, {"msg": "t=1700000000 v=1"}, {"msg": "zzz"}]
    p, out = oneshot(sample("in", recs) + r"""
<match in>
  @type parser
  tag out
  key_name msg
  hash_value_field parsed
  time_parse false
  <parse>
    @type regexp
    expression /^t=(?<time>\d+) v=(?<v>\d+)$/
    time_key time
    time_type unixtime
  </parse>
</match>
<match out>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    # time_parse false: the time field stays a value and the record keeps its own time
    assert out == [("out", {"parsed": {"time": "1700000000", "v": "1"}})], out
    assert not _times(p.stdout)[0].startswith("2023-11-14"), p.stdout
    assert "msg does not exist" in p.stderr


def test_out_parser_configuration_errors():
    base = "<match a>\n  @type parser\n  key_name m\n  format json\n%s</match>\n"
    config_error(base % "", r"\.conf:\d+: missing both of remove_prefix and add_prefix")
    config_error(base % "  tag t\n  add_prefix p\n",
                 r"\.conf:\d+: both of tag and remove_prefix/add_prefix must not be specified")
    config_error("<match a>\n  @type parser\n  key_name m\n  tag t\n</match>\n",
                 r"\.conf:\d+: 'format' parameter is required")


# ---- fluent-plugin-multi-format-parser (lib/fluent/plugin/parser_multi_format.rb 1.x) ----

def test_multi_format_tries_patterns_in_order_with_their_own_time_and_names():
    recs = [{"m": '{"a":1,"ts":"2024-01-02 03:04:05"}'},
            {"m": '127.0.0.1 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5 "-" "c"'},
            {"m": "k=v"},
            {"m": "plain text"}]
    p, out = oneshot(sample("t", recs) + r"""
<filter t>
  @type parser
  key_name m
  <parse>
    @type multi_format
    format_key fmt
    <pattern>
      format json
      time_key ts
      time_format %Y-%m-%d %H:%M:%S
      format_name js
    </pattern>
    <pattern>
      format apache2
      format_name ap
    </pattern>
    <pattern>
      format /^(?<k>\w+)=(?<v>\w+)$/
    </pattern>
    <pattern>
      format none
      format_name raw
    </pattern>
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    got = [r for _, r in out]
    assert got[0] == {"a": 1, "fmt": "js"}, got
    assert got[1]["fmt"] == "ap" and got[1]["code"] == 200 and got[1]["method"] == "GET", got
    # a pattern without format_name gives null: the plugin pushes nil (its fallback never runs)
    assert got[2] == {"k": "k", "v": "v", "fmt": None}, got
    assert got[3] == {"message": "plain text", "fmt": "raw"}, got
    times = [l.split(" ")[0] + " " + l.split(" ")[1] for l in p.stdout.splitlines()]
    assert times[0] == "2024-01-02 03:04:05.000000000" and times[1].startswith("2024-01-02 03"), \
        times


def test_multi_format_without_a_match_declines_even_without_patterns():
    p, out = oneshot(sample("t", [{"m": "zzz"}, {"m": "{\"a\":2}"}]) + """
<filter t>
  @type parser
  key_name m
  <parse>
    @type multi_format
    <pattern>
      format json
    </pattern>
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert [r for _, r in out] == [{"a": 2}], out
    assert "pattern not match with data 'zzz'" in p.stderr, p.stderr
    # no <pattern> (a td-agent file whose patterns are in missing @include files): the plugin
    # starts and parses nothing; so does logship, with a warning naming file:line
    p, out = oneshot(sample("t", [{"m": "{\"a\":2}"}]) + """
<filter t>
  @type parser
  key_name m
  <parse>
    @type multi_format
    @include /nonexistent/patterns.conf
  </parse>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0 and out == [], (p.stderr, out)
    assert re.search(r"\.conf:\d+: multi_format has no <pattern>", p.stderr), p.stderr
    assert "pattern not match" in p.stderr, p.stderr

# ---- record_transformer ----

def test_record_transformer_json_values_are_objects_with_placeholders_inside():
    # fluentd's parse_value: a <record> value that starts with { or [ and is JSON is that
    # object/array, every string in it expanded (keys as strings; under auto_typecast a value
    # that is one placeholder keeps its type); one that is not JSON stays a string.
    # Compared with fluentd 1.15.3 on the same records: identical.
    p, recs = oneshot(sample("t.web", [{"a": "v", "n": {"x": [1]}}, {"b": 1}]) + """
<filter t.**>
  @type record_transformer
  <record>
    obj {"k${tag_parts[1]}": "${record[\\"a\\"]}", "n": "${record[\\"n\\"]}", "u": "\\u00e9", "m": {"z": null, "y": [true, 1.5]}}
    arr ["${tag}", 2, "x${record[\\"b\\"]}"]
    plain "[not json"
  </record>
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert "failed to parse [not json as json" in p.stderr, p.stderr
    assert [r for _, r in recs] == [
        {"a": "v", "n": {"x": [1]}, "obj": {"kweb": "v", "n": {"x": [1]}, "u": "\u00e9",
                                           "m": {"z": None, "y": [True, 1.5]}},
         "arr": ["t.web", 2, "x"], "plain": "[not json"},
        {"b": 1, "obj": {"kweb": None, "n": None, "u": "\u00e9", "m": {"z": None, "y": [True, 1.5]}},
         "arr": ["t.web", 2, "x1"], "plain": "[not json"}], recs

def test_grep_key_and_remove_keys_take_nested_record_accessors():
    # $.a.b in grep's key and record_transformer's remove_keys is fluentd's record_accessor
    # (nested); they were read as one top-level key named "$.a.b" (nothing matched)
    p, recs = oneshot(sample("t", [{"a": {"b": "xy", "c": 1}, "d": 2}, {"a": {"b": "no"}},
                                   {"a": {"b": "xz"}, "c": 3}]) + """
<filter t>
  @type grep
  <regexp>
    key $.a.b
    pattern /^x/
  </regexp>
  <exclude>
    key $['a']['b']
    pattern /z$/
  </exclude>
</filter>
<filter t>
  @type record_transformer
  remove_keys $.a.c,d
</filter>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert [r for _, r in recs] == [{"a": {"b": "xy"}}], recs

def test_rewrite_tag_filter_hostname_command_output_is_the_hostname():
    # the plugin's `#{hostname_command}`.chomp, run once at start
    p, recs = oneshot(sample("a", [{"lvl": "warn"}]) + """
<match a>
  @type rewrite_tag_filter
  hostname_command printf 'edge-7\\n'
  <rule>
    key lvl
    pattern /^(\\w+)$/
    tag $1.${hostname}.__HOSTNAME__
  </rule>
</match>
""" + STDOUT_ALL)
    assert p.returncode == 0, p.stderr
    assert [t for t, _ in recs] == ["warn.edge-7.edge-7"], recs
