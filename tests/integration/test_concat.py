"""fluent-plugin-concat's concat filter (plugins/filter_concat/concat.c).

Records come from a JSON log (time in field t) through in_tail, pass concat, and are read back
from out_stdout; the expected records follow lib/fluent/plugin/filter_concat.rb: a group's
record is the ending record merged with the group's first record and key joined, at the
ending record's time (use_first_timestamp: the first's).
"""
import json, os, re, time
from lstest import Agent, conf, run, tmpdir

def stdout_records(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{9} [+-]\d{4} (\S+): (\{.*\})$", line)
        if m:
            out.append((m.group(1), m.group(2), json.loads(m.group(3))))
    return out

def log_of(records):
    d = tmpdir()
    path = os.path.join(d, "in.log")
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return d, path

def source(path, d, tag="app.x"):
    return """
<source>
  @type tail
  path {path}
  pos_file {d}/pos
  read_from_head true
  tag {tag}
  <parse>
    @type json
    time_key t
    time_type unixtime
    utc true
  </parse>
</source>
""".format(path=path, d=d, tag=tag)

STDOUT = "<match app.**>\n  @type stdout\n</match>\n"

def oneshot(records, filt, tail=STDOUT, expect_rc=0):
    d, path = log_of(records)
    p = run(["-c", conf(source(path, d) + filt + tail, d), "--oneshot"])
    assert p.returncode == expect_rc, p.stderr
    return p, stdout_records(p.stdout)

def T(sec):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))

def test_start_regexp_streams_merge_and_passthrough():
    recs = [
        {"t": 100, "log": "2026-12-05 ERROR boom", "cid": "a", "stream": "stderr"},
        {"t": 101, "log": "  at Foo(Foo.java:1)", "cid": "a", "extra": 1},
        {"t": 102, "log": "2026-12-05 INFO start", "cid": "b"},
        {"t": 103, "log": "  at Bar(Bar.java:2)", "cid": "a", "stream": "stdout", "late": True},
        {"t": 104, "log": "2026-12-05 INFO next", "cid": "a", "stream": "x"},
        {"t": 105, "log": "no group", "cid": "c"},
        {"t": 106, "other": 1},
        {"t": 107, "log": "2026-12-05 INFO last", "cid": "b"},
    ]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key log
  stream_identity_key cid
  multiline_start_regexp /^\\d{4}-\\d\\d-\\d\\d/
</filter>
""")
    assert out == [
        # ended by record 5: its fields, then the first's over them, log joined
        (T(104), "app.x", {"log": "2026-12-05 ERROR boom\n  at Foo(Foo.java:1)\n  at Bar(Bar.java:2)",
                           "cid": "a", "stream": "stderr"}),
        (T(105), "app.x", {"log": "no group", "cid": "c"}),       # outside a group: as it is
        (T(106), "app.x", {"other": 1}),                          # no key: as it is
        (T(107), "app.x", {"log": "2026-12-05 INFO start", "cid": "b"}),
        # held at the end: let go at stop, at the first record's time, on to the <match>
        (T(104), "app.x", {"log": "2026-12-05 INFO next", "cid": "a", "stream": "x"}),
        (T(107), "app.x", {"log": "2026-12-05 INFO last", "cid": "b"}),
    ], out
    assert "Flush remaining buffer: app.x:a" in p.stderr, p.stderr

def test_end_regexp_continuous_line_and_first_timestamp():
    recs = [
        {"t": 10, "msg": "begin"},
        {"t": 11, "msg": " more"},
        {"t": 12, "msg": " done;"},
        {"t": 20, "msg": "solo;"},
        {"t": 30, "msg": "x"},
        {"t": 31, "msg": "BROKEN"},          # not continuous: the group goes, then this record
    ]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key msg
  separator ""
  multiline_end_regexp /;$/
  continuous_line_regexp /^[ a-z]/
  use_first_timestamp true
</filter>
""")
    assert out == [
        (T(10), "app.x", {"msg": "begin more done;"}),
        (T(20), "app.x", {"msg": "solo;"}),
        (T(30), "app.x", {"msg": "x"}),
        # the plugin gives the record after the group the group's first time too
        (T(30), "app.x", {"msg": "BROKEN"}),
    ], out

def test_start_and_end_regexp_one_line_group_after_a_held_group():
    recs = [{"t": 1, "m": "S one"}, {"t": 2, "m": "body"}, {"t": 3, "m": "S two E"},
            {"t": 4, "m": "S three"}, {"t": 5, "m": "E"}]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key m
  separator |
  multiline_start_regexp /^S/
  multiline_end_regexp /E$/
</filter>
""")
    assert [(t, r["m"]) for t, _, r in out] == [
        (T(3), "S one|body"), (T(3), "S two E"), (T(5), "S three|E")], out

def test_n_lines_groups_and_the_rest_at_stop():
    recs = [{"t": i, "l": "L%d" % i, "i": i} for i in range(1, 8)]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key l
  n_lines 3
  separator ,
</filter>
""")
    assert out == [
        (T(3), "app.x", {"l": "L1,L2,L3", "i": 1}),
        (T(6), "app.x", {"l": "L4,L5,L6", "i": 4}),
        (T(7), "app.x", {"l": "L7", "i": 7}),
    ], out

def test_partial_key_mode_keep_and_drop_the_key():
    recs = [{"t": 1, "log": "a", "p": "true", "n": 1}, {"t": 2, "log": "b", "p": "true"},
            {"t": 3, "log": "c", "p": "false", "n": 3}, {"t": 4, "log": "whole", "p": "false"},
            {"t": 5, "log": "no partial key"}]
    filt = """
<filter app.**>
  @type concat
  key log
  separator ""
  partial_key p
  partial_value true
  keep_partial_key %s
</filter>
"""
    p, out = oneshot(recs, filt % "false")
    assert out == [(T(3), "app.x", {"log": "abc", "n": 1}), (T(4), "app.x", {"log": "whole"}),
                   (T(5), "app.x", {"log": "no partial key"})], out
    # kept: the ending record's own value (the plugin deletes the first record's)
    p, out = oneshot(recs, filt % "true")
    assert out == [(T(3), "app.x", {"log": "abc", "p": "false", "n": 1}),
                   (T(4), "app.x", {"log": "whole", "p": "false"}),
                   (T(5), "app.x", {"log": "no partial key"})], out

def test_partial_key_buffer_limit_methods():
    recs = [{"t": 1, "log": "aaaa", "p": "1"}, {"t": 2, "log": "bbbb", "p": "1"},
            {"t": 3, "log": "cccc", "p": "1"}, {"t": 4, "log": "dd", "p": "0"}]
    # a record counts its keys and values: "log" + "aaaa" + "p" + "1" = 9 bytes (t is the time,
    # not a field); a limit of 25 holds two
    got = {}
    for method in ("ignore", "truncate", "new", "drop"):
        p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key log
  separator ""
  partial_key p
  partial_value 1
  buffer_limit_size 25
  buffer_overflow_method %s
</filter>
""" % method)
        got[method] = [r["log"] for _, _, r in out]
    # truncate: the group goes without the record that overflowed (which is lost, as in the
    # plugin); new: that record starts the next group
    assert got["ignore"] == ["aaaabbbbccccdd"], got
    assert got["new"] == ["aaaabbbb", "ccccdd"], got
    assert got["truncate"] == ["aaaabbbb", "dd"], got
    assert got["drop"] == ["dd"], got

def test_docker_partial_metadata_sorted_by_ordinal_and_removed():
    recs = [
        {"t": 1, "log": "B", "partial_message": "true", "partial_id": "X", "partial_ordinal": "2",
         "partial_last": "false", "container_id": "c1"},
        {"t": 1, "log": "A", "partial_message": "true", "partial_id": "X", "partial_ordinal": "1",
         "partial_last": "false", "container_id": "c1"},
        {"t": 2, "log": "other", "partial_message": "true", "partial_id": "Y",
         "partial_ordinal": "1", "partial_last": "true", "container_id": "c1"},
        {"t": 3, "log": "C\n", "partial_message": "true", "partial_id": "X",
         "partial_ordinal": "3", "partial_last": "true", "container_id": "c1"},
        {"t": 4, "log": "plain\n", "container_id": "c1"},
    ]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key log
  separator ""
  use_partial_metadata true
</filter>
""")
    assert out == [
        (T(2), "app.x", {"log": "other", "container_id": "c1"}),
        (T(3), "app.x", {"log": "ABC\n", "container_id": "c1"}),
        (T(4), "app.x", {"log": "plain\n", "container_id": "c1"}),
    ], out

def test_cri_logtag_partial_and_full():
    recs = [{"t": 1, "log": "part1 ", "logtag": "P", "stream": "stdout"},
            {"t": 2, "log": "part2", "logtag": "F", "stream": "stdout"},
            {"t": 3, "log": "whole", "logtag": "F:x", "stream": "stderr"}]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key log
  separator ""
  use_partial_cri_logtag true
  partial_cri_logtag_key logtag
  partial_cri_stream_key stream
</filter>
""")
    assert out == [(T(2), "app.x", {"log": "part1 part2"}), (T(3), "app.x", {"log": "whole"})], out

def test_later_filters_see_the_joined_record():
    recs = [{"t": 1, "m": "S a"}, {"t": 2, "m": "b"}, {"t": 3, "m": "S alone"},
            {"t": 4, "m": "S c"}, {"t": 5, "m": "d"}]
    p, out = oneshot(recs, """
<filter app.**>
  @type concat
  key m
  multiline_start_regexp /^S/
</filter>
<filter app.**>
  @type grep
  <regexp>
    key m
    pattern /\\n/
  </regexp>
</filter>
<filter app.**>
  @type record_transformer
  <record>
    seen yes
  </record>
</filter>
""")
    # "S alone" is one line: grep drops it; "S c\nd", let go at stop, passes both filters too
    assert [(r["m"], r.get("seen")) for _, _, r in out] == [("S a\nb", "yes"), ("S c\nd", "yes")], out

def timed(filt, labels, records_first, records_later=None, wait_for=None):
    d, path = log_of(records_first)
    cfg = conf(source(path, d) + filt + STDOUT + labels, d)
    a = Agent(cfg).start()
    a.wait_log(r"logship started")
    if records_later:
        with open(path, "a") as f:
            for r in records_later:
                f.write(json.dumps(r) + "\n")
    a.wait_log(wait_for, timeout=20)
    time.sleep(0.5)
    assert a.stop() == 0, a.log()
    return a, stdout_records(a.stdout())

FILT_TIMEOUT = """
<filter app.**>
  @type concat
  key m
  multiline_start_regexp /^S/
  flush_interval 1
  %s
</filter>
"""

def test_timeout_goes_on_to_the_match_without_a_label():
    a, out = timed(FILT_TIMEOUT % "", "", [{"t": 5, "m": "S held"}, {"t": 6, "m": "more"}],
                   wait_for=r"Timeout flush: app\.x:default")
    got = [(tag, r) for _, tag, r in out]
    assert got == [("app.x", {"m": "S held\nmore"})], (got, a.log())
    # a timeout's record has the time of the flush (not use_first_timestamp)
    assert out[0][0] != T(5), out

def test_timeout_goes_to_timeout_label_or_error_label():
    lab = """
<label @TIMEOUT>
  <match **>
    @type stdout
    <inject>
      tag_key via
    </inject>
  </match>
</label>
"""
    a, out = timed(FILT_TIMEOUT % "timeout_label @TIMEOUT\nuse_first_timestamp true", lab,
                   [{"t": 5, "m": "S held"}], wait_for=r"Timeout flush")
    assert out == [(T(5), "app.x", {"m": "S held", "via": "app.x"})], (out, a.log())
    err = lab.replace("@TIMEOUT", "@ERROR")
    a, out = timed(FILT_TIMEOUT % "", err, [{"t": 5, "m": "S held"}], wait_for=r"Timeout flush")
    assert [r for _, _, r in out] == [{"m": "S held", "via": "app.x"}], (out, a.log())

def test_flush_interval_zero_holds_until_stop_and_stop_flushes():
    d, path = log_of([{"t": 5, "m": "S a"}, {"t": 6, "m": "b"}])
    cfg = conf(source(path, d) + FILT_TIMEOUT.replace("flush_interval 1", "flush_interval 0")
               % "" + STDOUT, d)
    a = Agent(cfg).start()
    a.wait_log(r"logship started")
    time.sleep(2.5)
    assert stdout_records(a.stdout()) == [], a.stdout()
    assert a.stop() == 0, a.log()
    out = stdout_records(a.stdout())
    assert [(t, r) for t, _, r in out] == [(T(5), {"m": "S a\nb"})], (out, a.log())

def test_configuration_errors_name_file_and_line():
    d = tmpdir()
    base = "<source>\n  @type sample\n  tag app.x\n</source>\n<filter app.**>\n  @type concat\n%s</filter>\n" + STDOUT
    cases = [
        ("  key log\n", r"Either n_lines, multiline_start_regexp, multiline_end_regexp, "
                        r"partial_key, use_partial_metadata or use_partial_cri_logtag is required"),
        ("  n_lines 2\n", r"'key' parameter is required|key"),
        ("  key log\n  n_lines 2\n  multiline_start_regexp /a/\n",
         r"n_lines and multiline_start_regexp/multiline_end_regexp are exclusive"),
        ("  key log\n  partial_key p\n", r"partial_value is required"),
        ("  key log\n  use_partial_metadata true\n  partial_key p\n  partial_value x\n",
         r"use_partial_metadata and partial_key are exclusive"),
        ("  key log\n  multiline_start_regexp /a(/\n", r"multiline_start_regexp"),
        ("  key log\n  n_lines 2\n  timeout_label @NOPE\n", r"timeout_label"),
    ]
    for body, pattern in cases:
        path = conf(base % body, d)
        p = run(["-c", path, "--dry-run"])
        assert p.returncode == 1, (body, p.stderr)
        assert re.search(re.escape(path) + r":\d+", p.stderr), (body, p.stderr)
        assert re.search(pattern, p.stderr), (body, p.stderr)

def test_full_buffer_block_neither_loses_nor_repeats_a_group():
    # the output is slow and its buffer small (overflow_action block): the record that ends a
    # group is refused whole while the buffer is full, offered again, and every group arrives
    # once, in order
    d = tmpdir()
    n = 20000
    cfg = conf(f"""
<source>
  @type sample
  tag a
  size 200
  count {n}
  auto_increment_key seq
</source>
<filter a>
  @type concat
  key message
  n_lines 2
  separator +
</filter>
<match **>
  @type fault
  path {d}/delivered
  hang 0.2
  <format>
    @type json
  </format>
  <buffer>
    chunk_limit_size 64k
    total_limit_size 256k
    queued_chunks_limit_size 64
    overflow_action block
    flush_interval 0
    flush_thread_count 2
  </buffer>
</match>
""", d)
    p = run(["-c", cfg, "--oneshot"], timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "pausing inputs" in p.stderr, p.stderr[-2000:]
    with open(os.path.join(d, "delivered")) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(0, n, 2)), (len(seqs), len(set(seqs)), seqs[:10])
    assert all(r["message"] == "sample+sample" for r in recs), recs[:3]

def test_docker_multiline_example_joins_split_lines_and_stack_traces():
    import glob, gzip
    from lstest import ROOT
    d = tmpdir()
    containers = os.path.join(d, "containers")
    long_line = "2026-12-05 10:00:00 INFO " + "x" * 40000 + "\n"
    pieces = [long_line[i:i + 16384] for i in range(0, len(long_line), 16384)]
    a_lines = pieces + ["2026-12-05 10:00:01 ERROR failed\n", "\tat a.B(B.java:1)\n",
                        "Caused by: java.io.IOException\n", "\t... 3 more\n",
                        "2026-12-05 10:00:02 INFO ok\n"]
    b_lines = ["2026-12-05 10:00:03 WARN b says\n", "  continued\n"]
    for cid, lines in (("aaa", a_lines), ("bbb", b_lines)):
        os.makedirs(os.path.join(containers, cid))
        with open(os.path.join(containers, cid, cid + "-json.log"), "w") as f:
            for i, l in enumerate(lines):
                f.write(json.dumps({"log": l, "stream": "stdout",
                                    "time": "2026-12-05T10:00:%02d.000000001Z" % i}) + "\n")
    env = dict(os.environ, DOCKER_CONTAINERS=containers, LOGSHIP_STATE_DIR=d,
               LOGSHIP_OUT_DIR=os.path.join(d, "out"))
    p = run(["-c", os.path.join(ROOT, "conf", "docker-multiline.conf"), "--oneshot"], env=env)
    assert p.returncode == 0, p.stderr
    got = []
    for f in sorted(glob.glob(os.path.join(d, "out", "docker", "*.gz"))):
        got += [json.loads(l) for l in gzip.open(f, "rt") if l.strip()]
    by = lambda cid: [r["log"] for r in got if "/%s/" % cid in r["path"]]
    assert by("aaa") == [long_line, "2026-12-05 10:00:01 ERROR failed\n\tat a.B(B.java:1)\n"
                         "Caused by: java.io.IOException\n\t... 3 more\n",
                         "2026-12-05 10:00:02 INFO ok\n"], [l[:60] for l in by("aaa")]
    assert by("bbb") == ["2026-12-05 10:00:03 WARN b says\n  continued\n"], by("bbb")

def test_a_group_that_never_ends_is_handed_on_past_16_mib():
    # continuation lines that keep coming: the plugin holds them without bound; logship hands
    # the group on once it holds 16 MiB, and no line is lost or repeated
    line = " " + "x" * 299999
    recs = [{"t": 1, "m": "START"}] + [{"t": 2 + i, "m": "%05d%s" % (i, line)} for i in range(60)]
    import glob
    d, path = log_of(recs)
    p = run(["-c", conf(source(path, d) + """
<filter app.**>
  @type concat
  key m
  separator ""
  multiline_start_regexp /^START/
  continuous_line_regexp /^\\d{5} /
</filter>
<match app.**>
  @type file
  path %s/out/o
  <format>
    @type json
  </format>
  <buffer []>
  </buffer>
</match>
""" % d, d), "--oneshot"], timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "holds more than 16 MiB: handed on as it is" in p.stderr, p.stderr[-2000:]
    got = [json.loads(l)["m"] for f in sorted(glob.glob(d + "/out/o*.log")) for l in open(f)]
    assert len(got[0]) > 16 << 20 and got[0].startswith("START00000"), len(got[0])
    # every line once, in order: the group, then what came after it
    assert "".join(got) == "START" + "".join(r["m"] for r in recs[1:]), [len(g) for g in got]

def test_kill9_reads_a_held_group_again_instead_of_losing_it():
    # fluentd's in_tail persists its position past the lines concat holds, so kill -9 loses
    # the unfinished group; here the group holds the pos_file back and is read again
    import glob
    from lstest import wait_until
    d = tmpdir()
    log = os.path.join(d, "in.log")
    with open(log, "w") as f:
        f.write("S1\nc1a\nc1b\nS2\nc2a\n")
    cfg = conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/pos
  read_from_head true
  tag app.x
  <parse>
    @type none
  </parse>
</source>
<filter app.**>
  @type concat
  key message
  multiline_start_regexp /^S/
  flush_interval 0
</filter>
<match app.**>
  @type file
  path {d}/out/x
  <format>
    @type json
  </format>
  <buffer>
    @type file
    path {d}/buf
    flush_at_shutdown true
  </buffer>
</match>
""", d)
    a = Agent(cfg).start()
    size = os.path.getsize(log)
    held_at = len("S1\nc1a\nc1b\n")

    def pos_now():
        try:
            return int(open(os.path.join(d, "pos")).read().split("\t")[1], 16)
        except (OSError, IndexError, ValueError):
            return -1
    wait_until(lambda: pos_now() >= 0 and glob.glob(os.path.join(d, "buf", "*.chunk")), 20,
               what="the first group in the buffer and a pos_file")
    time.sleep(0.5)
    assert pos_now() == held_at, (pos_now(), held_at, size)
    a.kill9()
    with open(log, "a") as f:
        f.write("S3\n")
    b = Agent(cfg).start()
    wait_until(lambda: pos_now() == held_at + len("S2\nc2a\n"), 20, what="group 2 read again")
    b.stop()
    msgs = []
    for p in sorted(glob.glob(os.path.join(d, "out", "*"))):
        msgs += [json.loads(l)["message"] for l in open(p) if l.strip()]
    assert msgs == ["S1\nc1a\nc1b", "S2\nc2a", "S3"], msgs
