"""fluent-plugin-flowcounter (output) and fluent-plugin-flowcounter-simple (filter, output).

Sample sources emit a known number of records at once; the agent runs for a few units of one
second; the counts emitted (or logged) are summed back and compared with what was sent.
MessagePack sizes are checked with Debian's python3-msgpack, an independent packer.
"""
import json, re, subprocess, time
from lstest import Agent, conf, run, tmpdir

DEB_PY = "/usr/bin/python3"

def msgpack_size(record):
    out = subprocess.run([DEB_PY, "-c", "import msgpack, json, sys; "
                          "print(len(msgpack.packb(json.loads(sys.argv[1]))))",
                          json.dumps(record)], capture_output=True, text=True, check=True)
    return int(out.stdout)

def stdout_records(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4} (\S+): (\{.*\})$", line)
        if m:
            out.append((m.group(1), json.loads(m.group(2))))
    return out

def samples(*specs):
    text = ""
    for tag, record, count in specs:
        text += """
<source>
  @type sample
  tag {tag}
  rate 1000
  count {count}
  sample {rec}
</source>
""".format(tag=tag, rec=json.dumps(record), count=count)
    return text

def run_for(cfg_text, seconds=3.2, label_wait=None):
    d = tmpdir()
    a = Agent(conf(cfg_text, d)).start()
    a.wait_log(r"logship started")
    time.sleep(seconds)
    assert a.stop() == 0, a.log()
    return a

WEB = {"msg": "hello", "n": 1}
DB = {"msg": "x"}

def test_joined_counts_bytes_rates_and_idle_tags():
    a = run_for(samples(("app.web", WEB, 30), ("app.db", DB, 7)) + """
<match app.**>
  @type flowcounter
  unit second
  count_keys msg
  input_tag_remove_prefix app
</match>
<match flowcount>
  @type stdout
</match>
""")
    recs = [r for tag, r in stdout_records(a.stdout()) if tag == "flowcount"]
    assert len(recs) >= 2, a.stdout()
    assert sum(r.get("web_count", 0) for r in recs) == 30, recs
    assert sum(r.get("db_count", 0) for r in recs) == 7, recs
    assert sum(r.get("web_bytes", 0) for r in recs) == 30 * 5, recs    # "hello"
    assert sum(r.get("db_bytes", 0) for r in recs) == 7, recs
    first = next(r for r in recs if r.get("web_count"))
    # counts first, in the order the tags came, then every rate
    assert list(first) == ["web_count", "web_bytes", "db_count", "db_bytes", "web_count_rate",
                           "web_bytes_rate", "db_count_rate", "db_bytes_rate"], first
    for r in recs:
        for k in ("web_count", "db_count", "web_bytes"):
            # floor(count * 100 / step) / 100, step at least the 1 s unit (the timer looks
            # every 0.5 s; a loaded sanitizer run may take a few)
            assert r[k] / 4.0 - 0.01 <= r[k + "_rate"] <= r[k], r
    # a tag without records stays, with 0 (delete_idle false)
    assert recs[-1]["web_count"] == 0 and recs[-1]["web_count_rate"] == 0.0, recs

def test_delete_idle_all_aggregate_and_record_bytes():
    a = run_for(samples(("app.web", WEB, 30), ("app.db", DB, 7)) + """
<match app.**>
  @type copy
  <store>
    @type flowcounter
    unit second
    aggregate all
    count_keys *
    tag all.counts
  </store>
  <store>
    @type flowcounter
    unit second
    delete_idle true
    tag idle.counts
  </store>
</match>
<match *.counts>
  @type stdout
</match>
""")
    recs = stdout_records(a.stdout())
    alls = [r for t, r in recs if t == "all.counts"]
    assert sum(r["count"] for r in alls) == 37, alls
    assert sum(r["bytes"] for r in alls) == 30 * msgpack_size(WEB) + 7 * msgpack_size(DB), alls
    assert all(list(r) == ["count", "bytes", "count_rate", "bytes_rate"] for r in alls), alls
    idle = [r for t, r in recs if t == "idle.counts"]
    assert sum(r.get("app.web_count", 0) for r in idle) == 30, idle
    # no bytes without count_keys; once idle, the record is empty (the plugin emits {})
    assert all("app.web_bytes" not in r for r in idle), idle
    assert idle[-1] == {}, idle

def test_tagged_output_style_into_the_match_label():
    a = run_for(samples(("app.web", WEB, 30), ("app.db", DB, 7)) + """
<match app.**>
  @type flowcounter
  @label @COUNTS
  unit second
  output_style tagged
  count_keys msg,n
</match>
<label @COUNTS>
  <match flowcount>
    @type stdout
  </match>
</label>
""")
    recs = [r for t, r in stdout_records(a.stdout()) if t == "flowcount"]
    web = [r for r in recs if r["tag"] == "app.web"]
    db = [r for r in recs if r["tag"] == "app.db"]
    assert sum(r["count"] for r in web) == 30 and sum(r["count"] for r in db) == 7, recs
    # count_keys msg,n: "hello" and "1"; a missing key counts 0
    assert sum(r["bytes"] for r in web) == 30 * 6 and sum(r["bytes"] for r in db) == 7, recs
    assert list(web[0]) == ["count", "bytes", "count_rate", "bytes_rate", "tag"], web

def test_flowcounter_configuration_errors():
    d = tmpdir()
    base = samples(("a", DB, 1)) + "<match a>\n  @type flowcounter\n%s</match>\n"
    for body, pattern in [
        ("  aggregate all\n  output_style tagged\n",
         r"flowcounter aggregate must be 'tag' when output_style is 'tagged'"),
        ("  unit second\n  timestamp_counting true\n",
         r"timestamp_counting cannot be enabled with unit: second"),
        ("  unit day\n  timestamp_counting true\n", r"requires timestamp_timezone"),
        ("  unit day\n  timestamp_counting true\n  timestamp_timezone nowhere\n",
         r"invalid timestamp_timezone"),
        ("  unit fortnight\n", r"unit"),
    ]:
        path = conf(base % body, d)
        p = run(["-c", path, "--dry-run"])
        assert p.returncode == 1 and re.search(re.escape(path) + r":\d+", p.stderr), (body, p.stderr)
        assert re.search(pattern, p.stderr), (body, p.stderr)

def counts_logged(log, kind):
    return [int(m.group(1)) for m in re.finditer(
        r"plugin:%s_flowcounter_simple\tcount:(\d+)\tindicator:(?:num|byte)\tunit:second"
        % kind, log)]

def test_flowcounter_simple_filter_counts_and_passes_records_on():
    a = run_for(samples(("app.web", WEB, 30), ("app.db", DB, 7)) + """
<filter app.**>
  @type flowcounter_simple
  unit second
</filter>
<match app.**>
  @type copy
  <store>
    @type flowcounter_simple
    indicator byte
    comment web tier
  </store>
  <store>
    @type stdout
  </store>
</match>
""", seconds=2.5)
    log = a.log()
    assert sum(counts_logged(log, "filter")) == 37, log
    assert len(stdout_records(a.stdout())) == 37, a.stdout()
    m = re.findall(r"plugin:out_flowcounter_simple\tcount:(\d+)\tindicator:byte\tunit:second"
                   r"\tcomment:web tier", log)
    assert sum(map(int, m)) == 30 * msgpack_size(WEB) + 7 * msgpack_size(DB), log
    # nothing is logged for a second without records
    assert len(counts_logged(log, "filter")) <= 2, log

def test_flowcounter_simple_configuration_errors():
    d = tmpdir()
    for body, pattern in [("  indicator lines\n", r"flowcounter-simple count allows num/byte"),
                          ("  unit week\n", r"flowcounter-simple unit allows second/minute/hour/day")]:
        path = conf(samples(("a", DB, 1)) + "<filter a>\n  @type flowcounter_simple\n%s</filter>\n"
                    "<match a>\n  @type null\n</match>\n" % body, d)
        p = run(["-c", path, "--dry-run"])
        assert p.returncode == 1 and re.search(re.escape(path) + r":\d+", p.stderr), (body, p.stderr)
        assert re.search(pattern, p.stderr), (body, p.stderr)
