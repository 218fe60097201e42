"""fluent-plugin-prometheus: <source> @type prometheus, the three monitors, and the
<filter>/<match> @type prometheus with <metric> sections.

A real logship follows a file (in_tail) or runs the sample input into real outputs (out_file, the
test output out_fault); /metrics is scraped over HTTP and every value is checked against what
the records imply, record by record (counts, sums, histogram buckets, label values), and
against monitor_agent's JSON for the same plugins. Every exposition goes through promtool
(Debian's prometheus package). Metric names and labels are the plugin's own, as its README
documents them, so dashboards written for fluentd keep working.
"""
import gzip, json, math, os, random, re, signal, socket, subprocess, sys, urllib.error, urllib.request
import lstest
from lstest import Agent, conf, free_port, run, tmpdir, wait_until, write

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_monitor import parse_labels  # noqa: E402

# the plugin's README (v2.2.2 / HEAD), "Exposed metrics" of the three monitors; the
# fluentd_tail_file_closed/_opened/_rotated/_throttled gauges of newer in_tail are not made
STATUS = ["fluentd_status_buffer_newest_timekey", "fluentd_status_buffer_oldest_timekey",
          "fluentd_status_buffer_queue_length", "fluentd_status_buffer_total_bytes",
          "fluentd_status_retry_count"]
OUTPUT = ["fluentd_output_status_" + n for n in (
    "buffer_total_bytes", "buffer_stage_length", "buffer_stage_byte_size", "buffer_queue_length",
    "buffer_queue_byte_size", "buffer_available_space_ratio", "buffer_newest_timekey",
    "buffer_oldest_timekey", "retry_count", "num_errors", "emit_count", "emit_records",
    "write_count", "rollback_count", "flush_time_count", "slow_flush_count", "retry_wait")]
TAIL = ["fluentd_tail_file_position", "fluentd_tail_file_inode"]

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")

def get(port, path="/metrics", headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers), r.read()

def parse(text):
    """client_ruby's text: '# TYPE' then '# HELP' per family, then its samples.
    Returns {family: {"type", "help", "samples": [(name, labels, value, label order)]}}."""
    fams, cur = {}, None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, typ = line[7:].split(" ")
            assert name not in fams, f"family {name} twice"
            cur = fams[name] = {"type": typ, "samples": []}
        elif line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert fams.get(name) is cur and "help" not in cur, line
            cur["help"] = help_
        else:
            m = SAMPLE_RE.match(line)
            assert m and cur is not None, line
            order = re.findall(r'([a-zA-Z_]\w*)="', m.group(2) or "")
            cur["samples"].append((m.group(1), parse_labels(m.group(2) or ""), float(m.group(3)), order))
    return fams

def promtool(text, allowed=()):
    """promtool check metrics: no format error; lint remarks only for the plugin's own names."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    out = p.stdout + p.stderr
    assert p.returncode in (0, 3), out
    assert "error" not in out.lower(), out
    for line in out.splitlines():
        name = line.split(" ")[0]
        assert name in allowed, f"promtool: {line}"

def scrape(port):
    st, h, body = get(port)
    assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4"), (st, h)
    return body.decode()

def series(fams, name, **want):
    """{label tuple: value} of one metric name's samples whose labels include want."""
    fam = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name not in fams and name.endswith(suffix) and name[:-len(suffix)] in fams:
            fam = name[:-len(suffix)]
    out = {}
    for n, labels, v, _ in fams.get(fam, {"samples": []})["samples"]:
        if n == name and all(labels.get(k) == w for k, w in want.items()):
            out[tuple(sorted(labels.items()))] = v
    return out

def one(fams, name, **want):
    s = series(fams, name, **want)
    assert len(s) == 1, (name, want, s)
    return next(iter(s.values()))

def ruby_s(v):
    """A record value as the plugin's label: Ruby's to_s."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)

def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)

# ---------------------------------------------------------------------------------------

def make_records(n=60, seed=7):
    rnd = random.Random(seed)
    recs = []
    for i in range(n):
        r = {"status": rnd.choice([200, 200, 200, 404, 500]), "method": rnd.choice(["GET", "POST"]),
             "t": {"lat": round(rnd.uniform(0, 3), 3)}}
        k = rnd.random()
        if k < 0.7:
            r["size"] = rnd.randint(0, 5000)
        elif k < 0.8:
            r["size"] = rnd.randint(0, 5000) + 0.25
        elif k < 0.87:
            r["size"] = None                 # skipped
        elif k < 0.94:
            r["size"] = "12"                 # not a number: that metric fails for this record
        # else: no size at all: skipped
        if i % 13 == 5:
            r["t"] = {"lat": rnd.choice([1, 2.5, 0.1])}   # on a bound: le is "less or equal"
        if i % 9 == 0:
            r["t"] = {"lat": "slow"}         # summary still counts it, histogram does not
        if i % 11 == 0:
            del r["t"]
        if rnd.random() < 0.5:
            r["user"] = rnd.choice(["ann", "bob"])
        recs.append(r)
    return recs

FILTER_CONF = """
<source>
  @type prometheus
  bind 127.0.0.1
  port {port}
</source>
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/in.pos
  read_from_head true
  tag app.web.front
  <parse>
    @type json
  </parse>
</source>
<filter app.**>
  @type prometheus
  <labels>
    env prod
    tag ${{tag}}
  </labels>
  <metric>
    name records_seen_total
    type counter
    desc Records seen.
    <labels>
      env staging
      last ${{tag_parts[-1]}}
      prefix ${{tag_prefix[1]}}
      status $.status
      method ${{method}}
      user ${{user}}
      host ${{hostname}}
      worker ${{worker_id}}
      fixed constant
    </labels>
  </metric>
  <metric>
    name bytes_sent_total
    type counter
    desc Bytes sent.
    key size
  </metric>
  <metric>
    name last_size
    type gauge
    desc Last size by status.
    key size
    <labels>
      status $.status
    </labels>
  </metric>
  <metric>
    name latency_seconds
    type summary
    desc Latency.
    key $.t.lat
  </metric>
  <metric>
    name latency
    type histogram
    desc Latency histogram.
    key $.t.lat
    buckets 0.1, 0.5, 1, 2.5
  </metric>
  <metric>
    name latency_default
    type histogram
    desc Latency with the default buckets.
    key $['t']['lat']
  </metric>
</filter>
<match app.**>
  @type file
  path {d}/out/${{tag}}
  format json
  <buffer tag>
    flush_interval 0.2s
  </buffer>
</match>
"""

def out_records(d):
    recs = []
    for root, _, files in os.walk(os.path.join(d, "out")):
        for n in sorted(files):
            if n.endswith(".log"):
                recs += [json.loads(l) for l in open(os.path.join(root, n))]
    return recs

def test_filter_counts_sums_gauges_summaries_and_histograms_record_by_record():
    d = tmpdir()
    port = free_port()
    recs = make_records()
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs))
    a = Agent(conf(FILTER_CONF.format(port=port, d=d), d)).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d/metrics" % port)
    wait_until(lambda: len(out_records(d)) >= len(recs), timeout=30, what="every record written")
    text = scrape(port)
    a.stop()
    # the filter passes every record on unchanged
    assert out_records(d) == recs
    promtool(text, allowed=("latency_seconds_count", "latency_count", "latency_default_count"))
    f = parse(text)
    assert [n for n in f] == ["records_seen_total", "bytes_sent_total", "last_size", "latency_seconds",
                              "latency", "latency_default"]
    assert {n: f[n]["type"] for n in f} == {"records_seen_total": "counter", "bytes_sent_total": "counter",
        "last_size": "gauge", "latency_seconds": "summary", "latency": "histogram",
        "latency_default": "histogram"}
    assert f["records_seen_total"]["help"] == "Records seen."
    host = socket.gethostname()

    # counter without key: one per record, labels in the plugin's order (plugin-level first,
    # a metric-level env overrides the plugin's in place), placeholders per record
    want = {}
    for r in recs:
        key = (("env", "staging"), ("tag", "app.web.front"), ("last", "front"), ("prefix", "app.web"),
               ("status", ruby_s(r.get("status"))), ("method", r["method"]),
               ("user", r["user"] if "user" in r else "${user}"), ("host", host),
               ("worker", "0"), ("fixed", "constant"))
        want[key] = want.get(key, 0) + 1
    got = {}
    for n, labels, v, order in f["records_seen_total"]["samples"]:
        assert order == ["env", "tag", "last", "prefix", "status", "method", "user", "host",
                         "worker", "fixed"], order
        got[tuple((k, labels[k]) for k in order)] = v
    assert got == want
    assert sum(got.values()) == len(recs)

    # counter with key: numbers only; null and missing skip, "12" fails that metric
    nums = [r["size"] for r in recs if is_num(r.get("size"))]
    assert math.isclose(one(f, "bytes_sent_total", env="prod", tag="app.web.front"), sum(nums))
    assert len(f["bytes_sent_total"]["samples"]) == 1
    # gauge: the last number per status
    last = {}
    for r in recs:
        if is_num(r.get("size")):
            last[str(r["status"])] = r["size"]
    assert {l["status"]: v for _, l, v, _ in f["last_size"]["samples"]} == last
    # summary: _sum of numbers; _count also counts a non-number (client_ruby's quirk)
    lat = [r["t"]["lat"] for r in recs if "t" in r]
    lat_num = [x for x in lat if is_num(x)]
    assert math.isclose(one(f, "latency_seconds_sum"), sum(lat_num))
    assert one(f, "latency_seconds_count") == len(lat)
    # histogram: cumulative buckets with the configured bounds as written, +Inf, sum, count
    for name, bounds, texts in (("latency", [0.1, 0.5, 1, 2.5], ["0.1", "0.5", "1", "2.5"]),
            ("latency_default", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
             ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"])):
        b = [(l["le"], v) for n, l, v, _ in f[name]["samples"] if n == name + "_bucket"]
        assert [le for le, _ in b] == texts + ["+Inf"]
        for (le, v), bound in zip(b, bounds + [math.inf]):
            assert v == sum(1 for x in lat_num if x <= bound), (name, le, v)
        assert one(f, name + "_count") == len(lat_num)
        assert math.isclose(one(f, name + "_sum"), sum(lat_num))
    # values print as Ruby floats
    assert re.search(r'^records_seen_total\{.*\} \d+\.0$', text, re.M)
    assert "failed to instrument a metric" in a.log() and "unknown placeholder `${user}`" in a.log()

OUT_CONF = """
<source>
  @type prometheus
  bind 127.0.0.1
  port {port}
  metrics_path /m
  content_encoding {enc}
</source>
<source>
  @type sample
  tag s.one
  rate 200
  count 40
  sample {{"v": 2.5, "code": 201}}
</source>
<match s.**>
  @type prometheus
  <metric>
    name sample_records_total
    type counter
    desc Records.
    <labels>
      code $.code
      t ${{tag}}
    </labels>
  </metric>
  <metric>
    name sample_value_total
    type counter
    desc Values.
    key v
  </metric>
</match>
"""

def test_match_prometheus_counts_then_discards_and_serves_gzip():
    for enc in ("identity", "gzip"):
        d = tmpdir()
        port = free_port()
        a = Agent(conf(OUT_CONF.format(port=port, enc=enc), d)).start()
        a.wait_log(r"listening on http://127\.0\.0\.1:%d/m" % port)

        def body():
            st, h, raw = get(port, "/m", {"Accept-Encoding": "gzip"})
            assert st == 200
            if enc == "gzip":
                assert h.get("Content-Encoding") == "gzip", h
                raw = gzip.decompress(raw)
            return raw.decode()
        wait_until(lambda: "sample_records_total{code=\"201\",t=\"s.one\"} 40.0\n" in body(),
                   what="40 records counted")
        text = body()
        promtool(text)
        f = parse(text)
        assert one(f, "sample_value_total") == 100.0
        # another path is not found; the aggregated path answers the same (one worker)
        try:
            get(port, "/metrics")
            raise AssertionError("/metrics should be 404 with metrics_path /m")
        except urllib.error.HTTPError as e:
            assert e.code == 404
        assert get(port, "/aggregated_metrics")[0] == 200
        a.stop()

MON_CONF = """
<source>
  @type prometheus
  bind 127.0.0.1
  port {port}
</source>
<source>
  @type monitor_agent
  port {mport}
</source>
<source>
  @type prometheus_monitor
  interval 0.2
  <labels>
    host ${{hostname}}
  </labels>
</source>
<source>
  @type prometheus_output_monitor
  interval 0.2
  {gauge_all}
  <labels>
    host ${{hostname}}
    dc tokyo
  </labels>
</source>
<source>
  @type prometheus_tail_monitor
  interval 0.2
</source>
<source>
  @type sample
  @id in_s
  tag s.a
  rate 100
  count 50
</source>
<source>
  @type tail
  @id in_t
  path {d}/t.log
  pos_file {d}/t.pos
  read_from_head true
  tag t.a
  <parse>
    @type none
  </parse>
</source>
<filter t.**>
  @type grep
  @id f_g
  <regexp>
    key message
    pattern /./
  </regexp>
</filter>
<match s.**>
  @type fault
  @id out_f
  path {d}/delivered.txt
  fail_for 1.5
  <buffer>
    flush_interval 0.2s
    retry_wait 0.2s
    retry_randomize false
  </buffer>
</match>
<match t.**>
  @type file
  @id out_file
  path {d}/out/${{tag}}
  <buffer tag>
    flush_interval 0.2s
  </buffer>
</match>
"""

def lines(path):
    return sum(1 for _ in open(path, "rb")) if os.path.exists(path) else 0

def test_monitors_report_the_plugins_names_labels_and_monitor_agents_values():
    d = tmpdir()
    port, mport = free_port(), free_port()
    write(os.path.join(d, "t.log"), "".join(f"line {i}\n" for i in range(25)))
    a = Agent(conf(MON_CONF.format(port=port, mport=mport, d=d, gauge_all=""), d)).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d/metrics" % port)
    host = socket.gethostname()

    # while the fault output fails: retry_wait appears, retry_count rises
    def retrying():
        f = parse(scrape(port))
        s = series(f, "fluentd_output_status_retry_wait", plugin_id="out_f")
        return s and list(s.values())[0] > 0 and f
    f = wait_until(retrying, timeout=20, what="retry_wait while failing")
    assert one(f, "fluentd_output_status_retry_count", plugin_id="out_f") >= 1

    # then everything is delivered and the monitors catch up with monitor_agent's counters
    wait_until(lambda: lines(os.path.join(d, "delivered.txt")) == 50, timeout=30, what="delivery")
    wait_until(lambda: os.path.exists(os.path.join(d, "t.pos")) and
               os.path.exists(os.path.join(d, "out")), what="tail output")

    def settled():
        st, _, raw = get(mport, "/api/plugins.json")
        agent = {p["plugin_id"]: p for p in json.loads(raw)["plugins"]}
        text = scrape(port)
        f = parse(text)
        o = agent["out_f"]
        if (o["buffer_queue_length"] or o["buffer_total_queued_size"] or
                one(f, "fluentd_output_status_emit_records", plugin_id="out_f") != 50 or
                one(f, "fluentd_output_status_write_count", plugin_id="out_f") != o["write_count"] or
                one(f, "fluentd_tail_file_position", plugin_id="in_t") != os.path.getsize(os.path.join(d, "t.log")) or
                one(f, "fluentd_output_status_buffer_total_bytes", plugin_id="out_f") != 0 or
                one(f, "fluentd_output_status_buffer_total_bytes", plugin_id="out_file") != 0):
            return None
        return text, f, agent
    text, f, agent = wait_until(settled, timeout=20, what="monitors settled")
    a.stop()

    promtool(text, allowed=("fluentd_status_retry_count", "fluentd_output_status_retry_count",
        "fluentd_output_status_emit_count", "fluentd_output_status_write_count",
        "fluentd_output_status_rollback_count", "fluentd_output_status_flush_time_count",
        "fluentd_output_status_slow_flush_count"))
    assert set(f) == set(STATUS + OUTPUT + TAIL)
    assert all(f[n]["type"] == "gauge" for n in f)
    # labels: <labels> first, then the plugin's own, in its order
    for n in STATUS:
        for _, _, _, order in f[n]["samples"]:
            assert order == ["host", "plugin_id", "plugin_category", "type"], (n, order)
    for n in OUTPUT:
        for _, labels, _, order in f[n]["samples"]:
            assert order == ["host", "dc", "plugin_id", "type"] and labels["dc"] == "tokyo", (n, order)
    for n in TAIL:
        for _, _, _, order in f[n]["samples"]:
            assert order == ["plugin_id", "type", "path"], (n, order)

    # prometheus_monitor: every plugin with its category; buffer values for buffered outputs
    cats = {l["plugin_id"]: (l["plugin_category"], l["type"], l["host"])
            for _, l, _, _ in f["fluentd_status_retry_count"]["samples"]}
    assert cats["out_f"] == ("output", "fault", host) and cats["out_file"] == ("output", "file", host)
    assert "in_s" not in cats        # inputs and filters have no retry_count (nil in fluentd)
    o, of = agent["out_f"], agent["out_file"]
    assert one(f, "fluentd_status_retry_count", plugin_id="out_f") == o["retry_count"] >= 1
    assert one(f, "fluentd_status_buffer_queue_length", plugin_id="out_f") == o["buffer_queue_length"] == 0
    assert one(f, "fluentd_status_buffer_total_bytes", plugin_id="out_file") == of["buffer_total_queued_size"]

    # prometheus_output_monitor: monitor_agent's numbers under the plugin's names
    for name, key in (("retry_count", "retry_count"), ("num_errors", "retry_count"),
                      ("emit_count", "emit_count"), ("emit_records", "emit_records"),
                      ("write_count", "write_count"), ("rollback_count", "rollback_count"),
                      ("flush_time_count", "flush_time_count"), ("slow_flush_count", "slow_flush_count"),
                      ("buffer_stage_length", "buffer_stage_length"),
                      ("buffer_stage_byte_size", "buffer_stage_byte_size"),
                      ("buffer_queue_byte_size", "buffer_queue_byte_size"),
                      ("buffer_available_space_ratio", "buffer_available_buffer_space_ratios")):
        for pid, row in (("out_f", o), ("out_file", of)):
            got = one(f, "fluentd_output_status_" + name, plugin_id=pid, type=row["type"])
            assert got == row[key], (name, pid, got, row[key])
    assert o["emit_records"] == 50 and o["retry_count"] >= 1 and o["write_count"] > o["retry_count"]
    assert of["emit_records"] == 25

    # prometheus_tail_monitor: the pos_file's offset and the inode of each followed file
    st = os.stat(os.path.join(d, "t.log"))
    assert series(f, "fluentd_tail_file_position") == {
        (("path", os.path.join(d, "t.log")), ("plugin_id", "in_t"), ("type", "tail")): st.st_size}
    assert one(f, "fluentd_tail_file_inode", plugin_id="in_t") == st.st_ino
    pos = open(os.path.join(d, "t.pos")).read().split("\t")
    assert int(pos[1], 16) == st.st_size and int(pos[2], 16) == st.st_ino

def test_output_monitor_gauge_all_false_makes_the_cumulative_ones_counters():
    d = tmpdir()
    port, mport = free_port(), free_port()
    write(os.path.join(d, "t.log"), "x\n")
    a = Agent(conf(MON_CONF.format(port=port, mport=mport, d=d, gauge_all="gauge_all false"), d)).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d/metrics" % port)
    wait_until(lambda: lines(os.path.join(d, "delivered.txt")) == 50, timeout=30, what="delivery")
    f = wait_until(lambda: (lambda f: one(f, "fluentd_output_status_emit_records", plugin_id="out_f") == 50 and f)(
        parse(scrape(port))), what="emit_records 50")
    a.stop()
    counters = {"retry_count", "num_errors", "emit_count", "emit_records", "write_count",
                "flush_time_count", "slow_flush_count"}
    for n in OUTPUT:
        assert f[n]["type"] == ("counter" if n[len("fluentd_output_status_"):] in counters else "gauge"), n

def dry(text):
    d = tmpdir()
    path = conf(text, d)
    p = run(["-c", path, "--dry-run"])
    return p, path

def test_configuration_errors_name_file_and_line():
    cases = [
        ("<metric>\n    name m\n    type counter\n  </metric>", r"'desc' parameter is required", 0),
        ("<metric>\n    name m\n    type meter\n    desc d\n  </metric>", r"counter\|gauge\|summary\|histogram|counter, gauge", 2),
        ("<metric>\n    name m\n    type gauge\n    desc d\n  </metric>", r"gauge metric requires 'key' option", 0),
        ("<labels>\n    a b\n  </labels>\n  <labels>\n    c d\n  </labels>\n  <metric>\n    name m\n    type counter\n    desc d\n  </metric>",
         r"labels section must have at most 1", 3),
        ("<metric>\n    name m\n    type counter\n    desc d\n  </metric>\n  <metric>\n    name m\n    type gauge\n    desc d\n    key k\n  </metric>",
         r"m has already been registered as counter type", 5),
        ("<metric>\n    name m\n    type counter\n    desc d\n  </metric>\n  <metric>\n    name m\n    type counter\n    desc other\n  </metric>",
         r"m has already been registered with different docstring", 5),
        ("<metric>\n    name m\n    type histogram\n    desc d\n    key k\n    buckets 5, 1\n  </metric>",
         r"increasing order", 5),
        ("<metric>\n    name m\n    type counter\n    desc d\n    <labels>\n      0bad x\n    </labels>\n  </metric>",
         r"invalid label name '0bad'", 5),
    ]
    for body, msg, line in cases:
        p, path = dry(f"<source>\n  @type prometheus\n</source>\n<filter **>\n  @type prometheus\n  {body}\n</filter>\n"
                      "<match **>\n  @type null\n</match>\n")
        assert p.returncode != 0, body
        assert re.search(msg, p.stderr), (msg, p.stderr)
        assert re.search(re.escape(path) + rf":{line + 6}:", p.stderr), (line, p.stderr)
    # TLS is refused rather than silently served as plain HTTP
    for sec, line in (("<transport tls>\n    cert_path /x\n  </transport>", 3),
                      ("<ssl>\n    enable true\n  </ssl>", 3)):
        p, path = dry(f"<source>\n  @type prometheus\n  {sec}\n</source>\n")
        assert p.returncode != 0 and re.search(re.escape(path) + rf":{line}: <(transport tls|ssl)> is not "
                                               r"supported", p.stderr), p.stderr
    # the monitors take no record accessor in <labels>
    p, path = dry("<source>\n  @type prometheus_monitor\n  <labels>\n    a $.x\n  </labels>\n</source>\n")
    assert p.returncode != 0 and re.search(re.escape(path) + r":4: record accessor syntax is not available "
                                           r"in prometheus_monitor", p.stderr), p.stderr
    # a family used by two plugins must agree: gauge_all false in one output monitor and true in another
    p, path = dry("<source>\n  @type prometheus_output_monitor\n</source>\n"
                  "<source>\n  @type prometheus_output_monitor\n  gauge_all false\n</source>\n")
    assert p.returncode != 0 and "already been registered as gauge type" in p.stderr, p.stderr
    # and the whole set is listed
    names = run(["--list-plugins"]).stdout
    for kind, name in (("input", "prometheus"), ("input", "prometheus_monitor"),
                       ("input", "prometheus_output_monitor"), ("input", "prometheus_tail_monitor"),
                       ("filter", "prometheus"), ("output", "prometheus")):
        assert re.search(rf"^{kind}\s+{name}\s", names, re.M), (kind, name, names)

def test_td_agent_prometheus_example_counts_nginx_statuses():
    d = tmpdir()
    port = free_port()
    log = os.path.join(d, "access.log")
    rnd = random.Random(3)
    want, size = {}, 0
    text = ""
    for i in range(80):
        code, method, n = rnd.choice([200, 200, 301, 404, 502]), rnd.choice(["GET", "HEAD"]), rnd.randint(0, 20000)
        text += (f'192.0.2.{i % 250 + 1} - - [21/Nov/2026:10:00:{i % 60:02d} +0000] "{method} /p/{i} HTTP/1.1" '
                 f'{code} {n} "-" "curl/8"\n')
        want[(method, str(code))] = want.get((method, str(code)), 0) + 1
        size += n
    write(log, text)
    env = dict(os.environ, NGINX_ACCESS_LOG=log, LOGSHIP_STATE_DIR=d, PROMETHEUS_PORT=str(port))
    cfg = os.path.join(lstest.ROOT, "conf", "td-agent-prometheus.conf")
    a = Agent(cfg, env=env, name=f"prom-example-{port}")
    a.dir = d
    a.start()
    a.wait_log(r"listening on http://0\.0\.0\.0:%d/metrics" % port)
    f = wait_until(lambda: (lambda f: f.get("nginx_request_status_code_total") and
                            sum(v for _, _, v, _ in f["nginx_request_status_code_total"]["samples"]) == 80 and f)(
        parse(scrape(port))), timeout=30, what="80 requests counted")
    a.stop()
    host = socket.gethostname()
    got = {(l["method"], l["status_code"]): v for _, l, v, _ in f["nginx_request_status_code_total"]["samples"]
           if l["host"] == host}
    assert got == want
    assert one(f, "nginx_size_bytes_total", host=host) == size
    assert one(f, "nginx_response_size_bytes_count", host=host) == 80

def test_initialized_metrics_exist_before_any_record():
    d = tmpdir()
    port = free_port()
    a = Agent(conf(f"""
<source>
  @type prometheus
  bind 127.0.0.1
  port {port}
</source>
<filter never.**>
  @type prometheus
  <labels>
    host ${{hostname}}
  </labels>
  <metric>
    name plain_total
    type counter
    desc Static labels only.
    initialized true
    <labels>
      app web
    </labels>
  </metric>
  <metric>
    name by_status_total
    type counter
    desc Dynamic labels need initlabels.
    initialized true
    <labels>
      status $.status
      t ${{tag}}
    </labels>
    <initlabels>
      status 200
      t never.a
    </initlabels>
    <initlabels>
      status 500
      t never.b
    </initlabels>
  </metric>
</filter>
<match never.**>
  @type null
</match>
""", d)).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d/metrics" % port)
    text = scrape(port)
    a.stop()
    assert "initlabels" not in a.log() and "not used" not in a.log(), a.log()
    promtool(text)
    f = parse(text)
    host = socket.gethostname()
    assert series(f, "plain_total") == {(("app", "web"), ("host", host)): 0.0}
    assert series(f, "by_status_total") == {
        (("host", host), ("status", "200"), ("t", "never.a")): 0.0,
        (("host", host), ("status", "500"), ("t", "never.b")): 0.0}
    # a dynamic label without an <initlabels> value is refused, naming the file and line
    p, path = dry("<filter **>\n  @type prometheus\n  <metric>\n    name m\n    type counter\n    desc d\n"
                  "    initialized true\n    <labels>\n      s $.s\n    </labels>\n  </metric>\n</filter>\n")
    assert p.returncode != 0 and re.search(re.escape(path) + r":3: RecordAccessor/Placeholder key s with value "
                                           r"\$\.s has not been set in a <initlabels>", p.stderr), p.stderr

def test_reload_with_a_metric_of_another_type_starts_a_fresh_registry():
    # the engine a SIGHUP builds to validate the new file must not register into the running
    # one's registry (the new type would clash); after the reload the metrics start from zero
    d = tmpdir()
    port = free_port()
    text = OUT_CONF.format(port=port, enc="identity")
    cfg = conf(text.replace("count 40", "count 10"), d)
    a = Agent(cfg).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d/m" % port)
    wait_until(lambda: "sample_value_total 25.0\n" in get(port, "/m")[2].decode(), what="10 records")
    write(cfg, text.replace("count 40", "count 4").replace(
        "    name sample_value_total\n    type counter", "    name sample_value_total\n    type gauge"))
    a.signal(signal.SIGHUP)
    wait_until(lambda: len(re.findall(r"listening on http://", a.log())) >= 2, what="second listen")
    assert "configuration is invalid" not in a.log(), a.log()
    wait_until(lambda: 'sample_records_total{code="201",t="s.one"} 4.0\n' in get(port, "/m")[2].decode(),
               what="4 records after the reload")
    body = get(port, "/m")[2].decode()
    assert "# TYPE sample_value_total gauge\n" in body and "sample_value_total 2.5\n" in body, body
    assert a.stop() == 0
