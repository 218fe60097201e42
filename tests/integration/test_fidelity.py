"""fluentd's own behaviour where logship differed (issue 13), one test per behaviour, each
checked against what fluentd's code does (noted beside it)."""
import json, os, sys
import lstest
from lstest import conf, run, tmpdir

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_core import oneshot  # noqa: E402


def _grep(section, recs=({"n": 1}, {"n": 2, "nokey": "v"}, {"n": 3, "nokey": ""})):
    """The numbers n of the records that a grep filter with this section keeps."""
    p, out = oneshot(f"""
<source>
  @type sample
  tag t
  sample {json.dumps(list(recs))}
  count {len(recs)}
  rate 100
</source>
<filter t>
  @type grep
  {section}
</filter>
<match t>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    return sorted(r["n"] for _, r in out)


def test_grep_matches_a_missing_key_as_the_empty_string():
    # filter_grep: pattern.match(key.call(record).to_s): a missing key is nil, nil.to_s is ""
    assert _grep("<regexp>\n    key nokey\n    pattern /^$/\n  </regexp>") == [1, 3]
    assert _grep("<exclude>\n    key nokey\n    pattern /^$/\n  </exclude>") == [2]
    assert _grep("<regexp>\n    key nokey\n    pattern /./\n  </regexp>") == [2]


def test_rds_slowlog_runs_the_plugins_own_readme_configuration():
    # fluent-plugin-rds-slowlog's README: tag, host, username, password and nothing else
    d = tmpdir()
    text = """
<source>
  @type rds_slowlog
  tag rds-slowlog
  host rds.example.com
  username user
  password pass
</source>
<match rds-slowlog>
  @type stdout
</match>
"""
    c = conf(text, d)
    os.chmod(c, 0o600)
    p = run(["-c", c, "--dry-run"], cwd=d)
    assert p.returncode == 0, p.stderr
    if os.access("/var/lib/logship", os.W_OK):
        want = "/var/lib/logship/rds_slowlog-"
    else:
        want = os.path.join(os.path.realpath(d), "rds_slowlog-")
    assert f"keeping the watermark in '{want}" in p.stderr, p.stderr
    # <system> root_dir wins
    c2 = conf(f"<system>\n  root_dir {d}/root\n</system>\n" + text, d, name="r.conf")
    os.chmod(c2, 0o600)
    p = run(["-c", c2, "--dry-run"], cwd="/")
    assert p.returncode == 0 and f"keeping the watermark in '{d}/root/rds_slowlog-" in p.stderr, p.stderr


def test_syslog_day_past_the_months_end_rolls_over():
    # fluentd's time parsers (the strptime gem, Ruby's Time) make Feb 30 into 2 March (1 March
    # in a leap year); day 32 is refused
    import re, time as _t
    d = tmpdir()
    log = os.path.join(d, "messages")
    with open(log, "w") as f:
        f.write("Feb 30 10:00:00 web1 app[12]: rolled\nFeb 32 10:00:00 web1 app[12]: refused\n")
    text = f"""
<source>
  @type tail
  path {log}
  pos_file {d}/pos
  read_from_head true
  tag sys
  <parse>
    @type syslog
  </parse>
</source>
<match sys>
  @type stdout
</match>
"""
    p = run(["-c", conf(text, d), "--oneshot"], env=dict(os.environ, TZ="UTC"))
    assert p.returncode == 0, p.stderr
    year = _t.gmtime().tm_year
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    want = f"{year}-03-0{1 if leap else 2} 10:00:00"
    lines = [l for l in p.stdout.splitlines() if " sys: " in l]
    assert len(lines) == 1 and lines[0].startswith(want) and '"rolled"' in lines[0], p.stdout + p.stderr


def _grep3(section):
    return _grep(section, ({"n": 1, "a": "1", "b": "x"}, {"n": 2, "a": "2", "b": "y"},
                           {"n": 3, "a": "3", "b": "z"}))


def test_grep_and_or_blocks_merge_into_fluentds_four_sets():
    # filter_grep.rb: every <or><regexp> is one OR set, every <and><exclude> one AND set
    two_ors = ("<or>\n <regexp>\n key a\n pattern /1/\n </regexp>\n </or>\n"
               "<or>\n <regexp>\n key b\n pattern /y/\n </regexp>\n </or>")
    assert _grep3(two_ors) == [1, 2]
    two_ands = ("<and>\n <exclude>\n key a\n pattern /1/\n </exclude>\n </and>\n"
                "<and>\n <exclude>\n key b\n pattern /y/\n </exclude>\n </and>")
    assert _grep3(two_ands) == [1, 2, 3]
    one_and = ("<and>\n <exclude>\n key a\n pattern /1/\n </exclude>\n"
               " <exclude>\n key b\n pattern /x/\n </exclude>\n </and>")
    assert _grep3(one_and) == [2, 3]


def test_configuration_checks_fluentd_makes():
    cases = [
        ("<filter t>\n  @type grep\n  <and>\n    <regexp>\n      key a\n      pattern /1/\n    </regexp>\n"
         "    <exclude>\n      key b\n      pattern /2/\n    </exclude>\n  </and>\n</filter>\n",
         r":\d+: Do not specify both <regexp> and <exclude> in <and>"),
        ("<filter t>\n  @type grep\n  <regexp>\n    key a\n    pattern /1/\n  </regexp>\n"
         "  <and>\n    <regexp>\n      key a\n      pattern /2/\n    </regexp>\n  </and>\n</filter>\n",
         r":\d+: Duplicate key in <and>: a"),
        ("<source>\n  @type tail\n  path /tmp/x.log\n  tag t\n  <parse>\n    @type multiline\n"
         "    format_firstline /^x/\n    format1 /^(?<a>.*)/m\n  </parse>\n</source>\n",
         r":12: format1 should be Regexp, need //: '/\^\(\?<a>\.\*\)/m'"),
    ]
    import re
    for body, want in cases:
        d = tmpdir()
        c = conf("<source>\n  @type sample\n  tag t\n</source>\n" + body +
                 "<match t>\n  @type null\n</match>\n", d)
        p = run(["-c", c, "--dry-run"])
        assert p.returncode == 1 and re.search(want, p.stderr), (want, p.stderr)


def test_event_time_before_1970_names_its_out_file_slice():
    # fluentd slices any time (Time#strftime); a negative timekey is a time, not "no time key"
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag t
  sample {{"t": -14182940}}
  count 1
</source>
<filter t>
  @type record_transformer
  renew_time_key t
</filter>
<match t>
  @type file
  path {d}/out/app.%Y%m%d
  <buffer time>
    @type file
    path {d}/buf
    timekey 1d
  </buffer>
</match>
""", d)
    p = run(["-c", c, "--oneshot"], env=dict(os.environ, TZ="UTC"))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(os.path.join(d, "out"))) == ["app.19690720_0.log"], os.listdir(os.path.join(d, "out"))


def _flat_time_run(flat, tz):
    """out_file with td-agent's flat settings; input time 21/Nov/2026:10:00:00 +0900."""
    d = tmpdir()
    log = os.path.join(d, "access.log")
    with open(log, "w") as f:
        f.write('192.0.2.1 - - [21/Nov/2026:10:00:00 +0900] "GET / HTTP/1.1" 200 5 "-" "curl"\n')
    c = conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/pos
  read_from_head true
  tag web
  format nginx
</source>
<match web>
  @type file
  path {d}/out/web
{flat}
</match>
""", d)
    p = run(["-c", c, "--oneshot"], env=dict(os.environ, TZ=tz))
    assert p.returncode == 0, p.stderr
    names = sorted(os.listdir(os.path.join(d, "out")))
    names = [n for n in names if n.endswith(".log")]
    assert len(names) == 1, names
    line = open(os.path.join(d, "out", names[0])).read().split("\t")[0]
    return names[0], line


def test_flat_utc_localtime_and_timezone_as_td_agent_applies_them():
    # fluentd's compat layer (fidelity.md 6.1-6.6), on a host whose zone is neither UTC nor Tokyo
    ny = "America/New_York"
    # utc + time_slice_format: UTC slices and UTC times
    assert _flat_time_run("  time_slice_format %Y%m%d%H\n  utc", ny) == \
        ("web.2026112101_0.log", "2026-11-21T01:00:00Z")
    # utc alone: the time is written in UTC, the slices stay local (New York: 20 Nov)
    assert _flat_time_run("  utc", ny) == ("web.20261120_0.log", "2026-11-21T01:00:00Z")
    # localtime false alone: the same as utc alone
    assert _flat_time_run("  localtime false", ny) == ("web.20261120_0.log", "2026-11-21T01:00:00Z")
    # localtime false + time_slice_format: UTC slices
    assert _flat_time_run("  time_slice_format %Y%m%d\n  localtime false", ny) == \
        ("web.20261121_0.log", "2026-11-21T01:00:00Z")
    # timezone: the time is formatted in that zone, and the slices follow it
    assert _flat_time_run("  timezone Asia/Tokyo", ny) == ("web.20261121_0.log", "2026-11-21T10:00:00+09:00")
    # neither: local (New York) time
    assert _flat_time_run("", ny) == ("web.20261120_0.log", "2026-11-20T20:00:00-05:00")


def test_flat_utc_and_localtime_together_are_refused_with_time_slice_format():
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag t
</source>
<match t>
  @type file
  path {d}/out/t
  time_slice_format %Y%m%d
  utc
  localtime true
</match>
""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 1 and "both of utc and localtime are specified" in p.stderr, p.stderr


def test_flat_formatter_parameters_without_format():
    # fidelity.md 6.6 (9): output_tag false + output_time false make out_file write bare JSON
    name, line = _flat_time_run("  output_tag false\n  output_time false", "UTC")
    assert line.startswith("{") and '"code":"200"' in line, line
    # and include_time_key/time_format go to <inject> while the column stays ISO 8601 (6.3)
    name, line = _flat_time_run("  include_time_key true\n  time_format %Y\n  utc", "UTC")
    assert line == "2026-11-21T01:00:00Z", line


def test_record_transformer_merges_every_record_section():
    # filter_record_transformer.rb: each <record> element's pairs go into one map, a later key wins
    p, out = oneshot("""
<source>
  @type sample
  tag t
  sample {"a": 1}
  count 1
</source>
<filter t>
  @type record_transformer
  <record>
    x first
    y 1
  </record>
  <record>
    y 2
    z "${tag}"
  </record>
</filter>
<match t>
  @type stdout
</match>
""")
    assert p.returncode == 0 and "not used" not in p.stderr, p.stderr
    assert [r for _, r in out] == [{"a": 1, "x": "first", "y": "2", "z": "t"}], out


def test_record_transformer_keep_keys_needs_renew_record():
    d = tmpdir()
    c = conf("""
<source>
  @type sample
  tag t
</source>
<filter t>
  @type record_transformer
  keep_keys a
</filter>
<match t>
  @type null
</match>
""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 1 and ":8: `renew_record` must be true to use `keep_keys`" in p.stderr, p.stderr


def test_integers_past_int64_keep_every_digit_as_ruby_does():
    # Ruby's Integer is a bignum: apache2's size.to_i, types :integer and JSON integers past
    # 2^63 keep their digits; logship writes them back as they were
    big = "123456789012345678901234567"
    d = tmpdir()
    for name, text in (("a.log", f'192.0.2.1 - - [21/Nov/2026:10:00:00 +0900] "GET / HTTP/1.1" 200 {big} "-" "c"\n'),
                       ("j.log", f'{{"n": {big}, "m": -9223372036854775809, "k": 9223372036854775807}}\n'),
                       ("t.log", f"{big}\t-0042\t1_000\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    p, out = oneshot(f"""
<source>
  @type tail
  path {d}/a.log
  pos_file {d}/a.pos
  read_from_head true
  tag a
  <parse>
    @type apache2
  </parse>
</source>
<source>
  @type tail
  path {d}/j.log
  pos_file {d}/j.pos
  read_from_head true
  tag j
  <parse>
    @type json
  </parse>
</source>
<source>
  @type tail
  path {d}/t.log
  pos_file {d}/t.pos
  read_from_head true
  tag t
  <parse>
    @type tsv
    keys x,y,z
    types x:integer,y:integer,z:integer
  </parse>
</source>
<match **>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    raw = {l.split(" ")[3].rstrip(":"): l for l in p.stdout.splitlines() if ": {" in l}
    assert f'"size":{big}' in raw["a"], raw
    assert f'"n":{big}' in raw["j"] and '"m":-9223372036854775809' in raw["j"], raw
    assert '"k":9223372036854775807' in raw["j"], raw
    assert f'"x":{big}' in raw["t"] and '"y":-42' in raw["t"] and '"z":1000' in raw["t"], raw


def _log_events(routing, data_match="app"):
    """Records printed by stdout outputs for a run whose sample input sends 3 records tagged
    app and 1 tagged nowhere (a "no patterns matched" warning)."""
    p, out = oneshot(f"""
<source>
  @type sample
  tag app
  sample {{"n": 1}}
  count 3
  rate 100
</source>
<source>
  @type sample
  tag nowhere
  sample {{"n": 9}}
  count 1
  rate 100
</source>
{routing}
<match {data_match}>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    return out


def test_own_log_lines_as_fluent_events_in_the_fluent_log_label():
    # fluent_log_event_router.rb: with <label @FLUENT_LOG> the events (tag fluent.<level>,
    # record {"message": the line without time and level}) go there, through its filters
    out = _log_events("""
<label @FLUENT_LOG>
  <filter fluent.**>
    @type record_transformer
    <record>
      host edge-1
    </record>
  </filter>
  <match fluent.**>
    @type stdout
  </match>
</label>""")
    data = [r for tag, r in out if tag == "app"]
    logs = [(tag, r) for tag, r in out if tag.startswith("fluent.")]
    assert data == [{"n": 1}] * 3, out
    assert ("fluent.info", {"message": "logship started", "host": "edge-1"}) in logs, logs
    warns = [r["message"] for tag, r in logs if tag == "fluent.warn"]
    assert any("no patterns matched" in m and "nowhere" in m for m in warns), logs
    assert all(set(r) == {"message", "host"} for _, r in logs), logs
    # the outputs' delivery progress lines are not events (each would be a record to deliver)
    assert not any(r["message"].startswith("[stdout.") for _, r in logs), logs


def test_own_log_lines_at_the_top_level_only_for_a_match_written_for_them():
    # fluentd's deprecated form: a top-level <match fluent.**> takes them
    out = _log_events("<match fluent.**>\n  @type stdout\n</match>")
    assert ("fluent.info", {"message": "logship started"}) in out, out
    assert [r for tag, r in out if tag == "app"] == [{"n": 1}] * 3
    # fluentd also routes them into a catch-all <match **> (its data mixed with its log):
    # logship does not
    out = _log_events("", data_match="**")
    assert sorted(tag for tag, _ in out) == ["app", "app", "app", "nowhere"], out


def test_every_worker_sections_sources_run_in_the_one_process():
    # fluentd root_agent.rb: a <worker N> holds source/filter/match/label and runs in worker N;
    # logship is one process, so each worker's sections run once (none is dropped)
    p, out = oneshot("""
<system>
  workers 3
</system>
<worker 0>
  <source>
    @type sample
    tag w0
    sample {"w": 0}
    count 2
    rate 100
  </source>
</worker>
<worker 1-2>
  <source>
    @type sample
    tag w12
    sample {"w": 12}
    count 3
    rate 100
    @label @L
  </source>
  <label @L>
    <filter **>
      @type record_transformer
      <record>
        via L
      </record>
    </filter>
    <match **>
      @type stdout
    </match>
  </label>
</worker>
<worker 2>
</worker>
<match **>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    got = sorted((t, r.get("via", "")) for t, r in out)
    assert got == [("w0", ""), ("w0", ""), ("w12", "L"), ("w12", "L"), ("w12", "L")], got
    # ids as fluentd checks them
    for section, want in (("<worker 3>\n</worker>", ":4: worker id 3 specified by <worker> "
                           "directive is not allowed. Available worker id is between 0 and 2"),
                          ("<worker 1>\n  <system>\n  </system>\n</worker>",
                           ":5: <system> is not allowed in <worker>")):
        c = conf("<system>\n  workers 3\n</system>\n" + section + "\n<match **>\n  @type null\n</match>\n")
        p = run(["-c", c, "--dry-run"])
        assert p.returncode != 0 and c + want in p.stderr, p.stderr


def test_stdout_output_takes_inject():
    # out_stdout.rb: helpers :inject; inject_values_to_record in its format (example/logevents.conf)
    p, out = oneshot("""
<source>
  @type sample
  tag t.x
  sample {"a": 1}
  count 2
  rate 100
</source>
<match t.**>
  @type stdout
  <inject>
    hostname_key host
    hostname web-1
    tag_key tg
    worker_id_key wid
  </inject>
</match>
""")
    assert p.returncode == 0 and "not used" not in p.stderr, p.stderr
    assert [r for _, r in out] == [{"a": 1, "host": "web-1", "wid": 0, "tg": "t.x"}] * 2, out


def test_flat_format_with_tcp_delimiter_is_not_reported_unused():
    # fluentd example/in_tcp.conf: compat_parameters copies delimiter into <parse> and in_tcp
    # keeps it for its framing; neither side has ignored it
    c = conf("""
<source>
  @type tcp
  port 5170
  tag tcp
  format none
  delimiter "|"
</source>
<match **>
  @type null
</match>
""")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 0 and "not used" not in p.stderr, p.stderr


def test_settings_real_td_agent_files_carry_are_accepted():
    # fluentd's own fluent.conf has a debug_agent source (a dRuby console: inert here);
    # out_copy.rb maps the deprecated deep_copy; <system> log-noise settings and <metrics>
    c = conf("""
<system>
  suppress_repeated_stacktrace true
  emit_error_log_interval 30s
  ignore_repeated_log_interval 60s
  ignore_same_log_interval 60s
  enable_msgpack_time_support true
  <metrics>
    @type local
  </metrics>
</system>
<source>
  @type debug_agent
  bind 127.0.0.1
  port 24230
</source>
<source>
  @type sample
  tag debug.t
  sample {"a": 1}
  count 2
  rate 100
</source>
<match debug.**>
  @type copy
  deep_copy true
  <store>
    @type stdout
  </store>
</match>
""")
    p = run(["-c", c, "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    assert "not used" not in p.stderr and "debug_agent" in p.stderr, p.stderr
    assert p.stdout.count('{"a":1}') == 2, p.stdout
