"""@type monitor_agent: fluentd's /api/plugins(.json) and Prometheus /metrics.

A real logship runs a sample input into a buffered test output (out_fault,
which appends what it delivers to a file and fails its first writes), and
the endpoints are scraped over HTTP while records flow. Counters must move,
agree with what actually reached the output file, parse as Prometheus text
format, never show the configuration's secrets, and the server must listen
on 127.0.0.1 only.
"""
import json, os, re, signal, socket, time, urllib.error, urllib.request
import lstest
from lstest import Agent, conf, free_port, run, tmpdir, wait_until

SECRETS = ("hunter2-pw-5150", "AKIAsec-KEY-9931", "url-pw-7788")

def get(port, path, host="127.0.0.1"):
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")

# ---- a small Prometheus text-format (0.0.4) parser ----

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (\S+)(?: (-?\d+))?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')

def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        assert m, f"bad label syntax at {text[pos:]!r}"
        assert m.group(1) not in labels, f"duplicate label {m.group(1)}"
        labels[m.group(1)] = re.sub(r"\\(.)", lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                                    m.group(2))
        pos = m.end()
        if m.group(3) == "":
            break
    assert pos == len(text), f"trailing label text {text[pos:]!r}"
    return labels

def parse_prometheus(text):
    """Returns {family: {"type", "help", "samples": [(labels, value)]}}; asserts the format."""
    fams, current = {}, None
    assert text.endswith("\n"), "exposition must end with a newline"
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), line
            assert name not in fams or "help" not in fams[name], f"HELP twice for {name}"
            fams.setdefault(name, {"samples": []})["help"] = help_
            current = name
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            f = fams.setdefault(name, {"samples": []})
            assert "type" not in f, f"TYPE twice for {name}"
            assert not f["samples"], f"TYPE after samples for {name}"
            f["type"] = typ
            current = name
        elif line.startswith("#"):
            continue
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"bad sample line {line!r}"
            name = m.group(1)
            assert name == current, f"sample {name} outside its family block ({current})"
            value = float(m.group(3))   # raises on garbage
            fams[name]["samples"].append((parse_labels(m.group(2) or ""), value))
    for name, f in fams.items():
        assert "type" in f and "help" in f, f"{name} lacks HELP or TYPE"
        if f["type"] == "counter":
            assert name.endswith("_total"), f"counter {name} should end in _total"
            assert all(v >= 0 for _, v in f["samples"]), name
        keys = [tuple(sorted(l.items())) for l, _ in f["samples"]]
        assert len(keys) == len(set(keys)), f"duplicate series in {name}"
    return fams

def value(fams, name, plugin_id):
    for labels, v in fams[name]["samples"]:
        if labels.get("plugin_id") == plugin_id:
            return v
    raise AssertionError(f"{name} has no series for {plugin_id}")

def plugin(doc, plugin_id):
    for p in doc["plugins"]:
        if p["plugin_id"] == plugin_id:
            return p
    raise AssertionError(f"no plugin {plugin_id} in {doc}")

def pipeline(d, port, count=0, rate=50, fail_times=2, extra_mon=""):
    out = os.path.join(d, "delivered.txt")
    cfg = conf(f"""
<source>
  @type monitor_agent
  @id mon
  port {port}
  include_config true
  include_retry true
  {extra_mon}
</source>
<source>
  @type sample
  @id in_s
  tag app.events
  rate {rate}
  count {count}
</source>
<match app.**>
  @type fault
  @id out_f
  path {out}
  fail_times {fail_times}
  password {SECRETS[0]}
  aws_sec_key {SECRETS[1]}
  endpoint "https://user:{SECRETS[2]}@example.com/x"
  <buffer>
    flush_interval 0.5s
    retry_wait 0.3s
    retry_randomize false
  </buffer>
</match>
""", d)
    os.chmod(cfg, 0o600)
    return cfg, out

def lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)

def no_secrets(*texts):
    for t in texts:
        for s in SECRETS:
            assert s not in t, f"secret {s!r} exposed in a response:\n{t[:2000]}"

def test_counters_move_and_agree_with_delivery():
    d = tmpdir()
    port = free_port()
    total = 200
    cfg, out = pipeline(d, port, count=total, rate=50)
    a = Agent(cfg).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d" % port)
    bodies = []

    # two scrapes while records flow (200 records at 50/s take 4 s)
    wait_until(lambda: value(parse_prometheus(get(port, "/metrics")[2]), "logship_records_in_total",
                             "in_s") >= 20, what="first records")
    st, ctype, m1 = get(port, "/metrics")
    assert st == 200 and ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    st, ctype, j1 = get(port, "/api/plugins.json")
    assert st == 200 and ctype.startswith("application/json"), ctype
    time.sleep(1.2)
    _, _, m2 = get(port, "/metrics")
    _, _, j2 = get(port, "/api/plugins.json")
    bodies += [m1, j1, m2, j2]
    f1, f2 = parse_prometheus(m1), parse_prometheus(m2)
    d1, d2 = json.loads(j1), json.loads(j2)
    in1, in2 = value(f1, "logship_records_in_total", "in_s"), value(f2, "logship_records_in_total", "in_s")
    assert in2 > in1 and in2 - in1 >= 20, (in1, in2)
    assert plugin(d2, "in_s")["emit_records"] > plugin(d1, "in_s")["emit_records"]
    assert plugin(d2, "out_f")["emit_records"] >= plugin(d1, "out_f")["emit_records"] > 0
    for fam in ("logship_records_out_total", "logship_bytes_out_total", "logship_chunks_flushed_total",
                "logship_retries_total", "logship_errors_total", "logship_dropped_records_total",
                "logship_buffer_bytes", "logship_buffer_queue_length", "process_resident_memory_bytes",
                "process_cpu_seconds_total", "process_start_time_seconds"):
        assert fam in f2, f"missing family {fam}"
    for fam in ("logship_buffer_bytes", "logship_buffer_queue_length", "process_resident_memory_bytes"):
        assert f2[fam]["type"] == "gauge", fam
    assert f2["process_resident_memory_bytes"]["samples"][0][1] > 1 << 20
    start = f2["process_start_time_seconds"]["samples"][0][1]
    assert abs(start - time.time()) < 120, start

    # fluentd's field names and types
    o = plugin(d2, "out_f")
    assert o["plugin_category"] == "output" and o["type"] == "fault" and o["output_plugin"] is True
    for k in ("buffer_queue_length", "buffer_total_queued_size", "retry_count", "emit_records",
              "emit_count", "write_count", "rollback_count", "buffer_stage_length",
              "buffer_stage_byte_size", "buffer_queue_byte_size"):
        assert isinstance(o[k], int), (k, o.get(k))
    assert isinstance(o["buffer_timekeys"], list) and isinstance(o["retry"], dict)
    assert isinstance(o["buffer_available_buffer_space_ratios"], float)
    i = plugin(d2, "in_s")
    assert i["plugin_category"] == "input" and i["output_plugin"] is False and i["retry_count"] is None
    assert plugin(d2, "mon")["type"] == "monitor_agent"
    assert o["config"]["@type"] == "fault" and o["config"]["password"] == "xxxxxx"
    assert o["config"]["aws_sec_key"] == "xxxxxx" and "xxxxxx@example.com" in o["config"]["endpoint"]

    # quiescent: the input stopped at count; everything delivered after the 2 injected failures
    wait_until(lambda: value(parse_prometheus(get(port, "/metrics")[2]), "logship_records_out_total",
                             "out_f") >= total, timeout=30, what="all records delivered")
    time.sleep(0.6)   # nothing more may arrive
    _, _, m3 = get(port, "/metrics")
    _, _, j3 = get(port, "/api/plugins.json")
    _, _, l3 = get(port, "/api/plugins")
    bodies += [m3, j3, l3]
    f3, d3 = parse_prometheus(m3), json.loads(j3)
    delivered = lines(out)
    assert delivered == total, f"{delivered} lines in the output file, expected {total}"
    assert value(f3, "logship_records_out_total", "out_f") == delivered
    assert value(f3, "logship_records_in_total", "in_s") == total
    assert value(f3, "logship_records_in_total", "out_f") == total
    assert value(f3, "logship_retries_total", "out_f") == 2
    assert value(f3, "logship_errors_total", "out_f") == 2
    assert value(f3, "logship_buffer_queue_length", "out_f") == 0
    assert value(f3, "logship_bytes_out_total", "out_f") == os.path.getsize(out)
    o = plugin(d3, "out_f")
    assert o["write_records"] == delivered and o["retry_count"] == 2 and o["emit_records"] == total
    assert o["buffer_queue_length"] == 0 and o["retry"] == {}

    # LTSV: one line per plugin, same values, hashes (config, retry) left out
    rows = [dict(f.split(":", 1) for f in line.split("\t")) for line in l3.splitlines()]
    assert [r["plugin_id"] for r in rows] == [p["plugin_id"] for p in d3["plugins"]]
    ltsv_out = [r for r in rows if r["plugin_id"] == "out_f"][0]
    assert ltsv_out["write_records"] == str(delivered) and ltsv_out["retry_count"] == "2"
    assert "config" not in ltsv_out and "retry" not in ltsv_out

    # fluentd's @id / @type filters
    only = json.loads(get(port, "/api/plugins.json?@id=out_f")[2])["plugins"]
    assert [p["plugin_id"] for p in only] == ["out_f"]
    only = json.loads(get(port, "/api/plugins.json?@type=sample")[2])["plugins"]
    assert [p["plugin_id"] for p in only] == ["in_s"]

    _, _, c = get(port, "/api/config.json")
    cj = json.loads(c)
    assert cj["pid"] == a.p.pid and cj["config_path"].endswith("logship.conf")
    bodies.append(c)
    no_secrets(*bodies)
    assert a.stop() == 0

def test_retry_state_visible_while_failing():
    d = tmpdir()
    port = free_port()
    cfg, _ = pipeline(d, port, rate=20, fail_times=1000)
    a = Agent(cfg).start()
    a.wait_log(r"listening on")

    def retrying():
        o = plugin(json.loads(get(port, "/api/plugins.json")[2]), "out_f")
        return o if o["retry"].get("steps", 0) >= 2 else None
    o = wait_until(retrying, timeout=20, what="retry steps")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", o["retry"]["start"]), o["retry"]
    assert "next_time" in o["retry"] and o["retry_count"] >= 2 and o["rollback_count"] >= 2
    assert o["write_records"] == 0 and o["buffer_queue_length"] >= 1
    f = parse_prometheus(get(port, "/metrics")[2])
    assert value(f, "logship_retries_total", "out_f") >= 2
    assert value(f, "logship_buffer_retry_steps", "out_f") >= 2
    assert value(f, "logship_buffer_bytes", "out_f") > 0
    a.kill9()   # a graceful stop would drain for 30 s against an output that keeps failing

def test_listens_on_loopback_only():
    d = tmpdir()
    port = free_port()
    cfg, _ = pipeline(d, port, rate=5)
    a = Agent(cfg).start()
    a.wait_log(r"listening on")
    hexport = "%04X" % port
    listening = []
    for tbl in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(tbl):
            continue
        for line in open(tbl).read().splitlines()[1:]:
            f = line.split()
            addr, state = f[1], f[3]
            if addr.endswith(":" + hexport) and state == "0A":
                listening.append(addr)
    assert listening == ["0100007F:" + hexport], listening
    # another local address of this machine must not reach it
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        other = s.getsockname()[0]
    except OSError:
        other = None
    finally:
        s.close()
    if other and not other.startswith("127."):
        c = socket.socket()
        c.settimeout(3)
        try:
            c.connect((other, port))
            raise AssertionError(f"monitor_agent reachable on {other}:{port}")
        except (ConnectionRefusedError, socket.timeout, OSError):
            pass
        finally:
            c.close()
    assert get(port, "/metrics")[0] == 200
    a.stop()

def test_errors_404_405_and_busy_port():
    d = tmpdir()
    port = free_port()
    cfg, _ = pipeline(d, port, rate=5)
    a = Agent(cfg).start()
    a.wait_log(r"listening on")
    try:
        get(port, "/nope")
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x=1", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("expected 405")
    except urllib.error.HTTPError as e:
        assert e.code == 405
    # a second agent on the same port fails to start and says why
    d2 = tmpdir()
    cfg2, _ = pipeline(d2, port, rate=5)
    b = Agent(cfg2, name="second").start()
    rc = b.wait(20)
    assert rc != 0 and re.search(r"cannot listen on 127\.0\.0\.1:%d .*in use" % port, b.log()), b.log()
    assert get(port, "/metrics")[0] == 200   # the first one is unharmed
    a.stop()

def test_tag_emits_metric_records():
    d = tmpdir()
    port = free_port()
    cfg = conf(f"""
<source>
  @type monitor_agent
  port {port}
  tag monitor.metrics
  emit_interval 0.3
</source>
<source>
  @type sample
  @id in_s
  tag app
  rate 20
</source>
<match app>
  @type null
  @id out_null
</match>
<match monitor.**>
  @type stdout
  @id out_stdout
</match>
""", d)
    a = Agent(cfg).start()
    wait_until(lambda: a.stdout().count("monitor.metrics: ") >= 8, what="metric records")
    a.stop()
    recs = []
    for line in a.stdout().splitlines():
        m = re.match(r"^\S+ \S+ \S+ monitor\.metrics: (\{.*\})$", line)
        if m:
            recs.append(json.loads(m.group(1)))
    ids = {r["plugin_id"] for r in recs}
    assert {"in_s", "out_null", "out_stdout"} <= ids, ids
    counts = [r["emit_records"] for r in recs if r["plugin_id"] == "in_s"]
    assert len(counts) >= 2 and counts[-1] > counts[0], counts

def test_oneshot_run_with_monitor_finishes():
    d = tmpdir()
    port = free_port()
    out = os.path.join(d, "o.txt")
    cfg = conf(f"""
<source>
  @type monitor_agent
  port {port}
</source>
<source>
  @type sample
  tag app
  count 30
</source>
<match app>
  @type fault
  path {out}
</match>
""", d)
    p = run(["-c", cfg, "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    assert lines(out) == 30

def test_reload_rebinds_the_port():
    d = tmpdir()
    port = free_port()
    cfg, _ = pipeline(d, port, rate=5)
    a = Agent(cfg).start()
    a.wait_log(r"listening on")
    pid_before = json.loads(get(port, "/api/config.json")[2])["pid"]
    a.signal(signal.SIGHUP)
    wait_until(lambda: len(re.findall(r"listening on http://", a.log())) >= 2, what="second listen")
    st, _, body = get(port, "/api/plugins.json")
    assert st == 200 and plugin(json.loads(body), "in_s")["type"] == "sample"
    assert json.loads(get(port, "/api/config.json")[2])["pid"] == pid_before   # same process
    assert a.stop() == 0

def test_http_library_is_loaded_by_the_plugin():
    # logship does not link libmicrohttpd (test_core checks that): monitor_agent loads it
    d = tmpdir()
    port = free_port()
    cfg, _ = pipeline(d, port, rate=5)
    a = Agent(cfg).start()
    a.wait_log(r"listening on")
    assert get(port, "/metrics")[0] == 200
    names = "\n".join(sorted(lstest.mapped_libs(a.p.pid)))
    assert "libmicrohttpd.so.12" in names, names
    assert "libmariadb.so" not in names, names
    assert a.stop() == 0

def test_missing_http_library_is_a_clear_configuration_error():
    # a file the dynamic linker finds first but cannot load stands in for a missing package
    d = tmpdir()
    lib = tmpdir()
    open(os.path.join(lib, "libmicrohttpd.so.12"), "wb").close()
    cfg, _ = pipeline(d, free_port(), rate=5)
    env = dict(os.environ, LD_LIBRARY_PATH=lib)
    for args in (["--dry-run"], []):
        p = run(["-c", cfg] + args, env=env, timeout=30)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert re.search(r"configuration error: .*logship\.conf:2: cannot load libmicrohttpd\.so\.12 "
                         r"\(install the Debian package libmicrohttpd12\): .*libmicrohttpd\.so\.12",
                         p.stderr), p.stderr


def test_idle_connections_do_not_starve_metrics():
    """200 local connections opened and left idle (a slow or stuck scraper, or a local user):
    /metrics must still answer at once, not after the idle ones time out."""
    d = tmpdir()
    port = free_port()
    cfg, _ = pipeline(d, port, count=1)
    a = Agent(cfg).start()
    a.wait_log(r"listening on http://127\.0\.0\.1:%d" % port)
    idle = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(s)
        # and a few that started a request and stopped (slowloris)
        for s in idle[:20]:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        st, _, body = get(port, "/metrics")
        took = time.monotonic() - t0
        assert st == 200 and "logship_records_in_total" in body
        assert took < 3, f"/metrics took {took:.1f}s behind 200 idle connections"
        print(f"    /metrics answered in {took * 1000:.0f} ms behind 200 idle connections")
        # the idle ones were closed by the server (the oldest first), not left to pile up
        for s in idle[:100]:
            s.settimeout(5)
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in idle:
            s.close()
    assert a.alive(), lstest.tail_text(a.log(), 20)
    a.stop()
