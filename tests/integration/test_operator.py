"""What logship tells its operator: misspelled parameters and sections with the nearest known
name, a tail path that matches nothing, --dry-run's local checks as the user that runs it,
--check-remote, an S3 start-up check that stops the start (or not, when the store is only away),
progress lines per delivery, --oneshot's totals, and one log line per failed attempt.

S3 is moto with IAM auth (tests/lib/s3server.py); the wrong-region answer comes from a small
HTTP server here that answers as S3 does for a bucket in another region (301 with
x-amz-bucket-region), which moto does not emulate.
"""
import http.server, os, re, shutil, subprocess, sys, threading, time
import lstest
from lstest import Agent, conf, run, tmpdir, write
from s3server import S3Server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_s3 as base  # noqa: E402  (s3env, sample_source, s3_match, oneshot)

T0 = 1704069000


def test_misspelled_parameter_and_section_suggest_the_nearest_name():
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag t
</source>
<match t>
  @type file
  path {d}/out
  apend true
  zzzzzz 1
  <bufer>
    timekey 1h
  </bufer>
  <buffer>
    timekey_wai 1m
    flush_intervl 5s
  </buffer>
</match>
""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 0, p.stderr   # fluentd warns too; it does not refuse
    e = p.stderr
    assert re.search(r":9: parameter 'apend' in <match t> is not used; did you mean 'append'\?", e), e
    assert re.search(r":10: parameter 'zzzzzz' in <match t> is not used$", e, re.M), e
    assert re.search(r":11: section <bufer> in <match t> is not used; did you mean <buffer>\?", e), e
    assert "did you mean 'timekey_wait'?" in e and "did you mean 'flush_interval'?" in e, e


def test_flat_formatter_and_buffer_keys_are_not_called_unused():
    """Keys fluentd takes that logship applies (v0.12 flat output_tag/output_time, which its
    compat layer turns into a <format> without a flat `format`) or accepts (the file buffer's
    path_suffix) are not warned about; a deprecated one is called deprecated once."""
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag t
  sample {{"k":"v"}}
  count 1
</source>
<source>
  @type syslog
  port 0
  bind 127.0.0.1
  tag sys
  protocol_type udp
</source>
<match t>
  @type file
  path {d}/out/o
  output_tag false
  output_time false
  <buffer>
    @type file
    path {d}/buf
    path_suffix .buf
  </buffer>
</match>
<match sys>
  @type null
</match>
""", d)
    p = run(["-c", c, "--dry-run"], timeout=30)
    assert p.returncode == 0, p.stderr
    assert "not used" not in p.stderr, p.stderr
    assert re.search(r":13: parameter 'protocol_type' is deprecated: udp or tcp;", p.stderr), p.stderr
    assert "deprecated: deprecated" not in p.stderr, p.stderr
    # the same output alone, run: the flat keys were applied (no time, no tag in the line)
    text = lstest.read(c)
    text = text[:text.index("<source>\n  @type syslog")] + text[text.index("<match t>"):]
    c2 = conf(text.split("<match sys>")[0], d, "oneshot.conf")
    p = run(["-c", c2, "--oneshot"], timeout=30)
    assert p.returncode == 0 and "not used" not in p.stderr, p.stderr
    out = [f for f in os.listdir(os.path.join(d, "out")) if f.startswith("o")]
    assert [lstest.read(os.path.join(d, "out", f)) for f in out] == ['{"k":"v"}\n'], out


def test_tail_path_that_matches_no_file_is_logged_at_start():
    d = tmpdir()
    write(os.path.join(d, "there.log"), "x\n")
    c = conf(f"""
<source>
  @type tail
  path {d}/nosuch/*.log,{d}/missing.log,{d}/there.log
  pos_file {d}/pos
  tag t
  <parse>
    @type none
  </parse>
</source>
<match t>
  @type null
</match>
""", d)
    a = Agent(c).start()
    try:
        a.wait_log("logship started")
        log = a.log()
    finally:
        a.stop()
    assert f"path '{d}/nosuch/*.log' matches no file yet" in log, log
    assert f"path '{d}/missing.log' matches no file yet" in log, log
    assert f"path '{d}/there.log' matches" not in log, log


def test_dry_run_checks_files_and_directories_as_the_running_user():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise lstest.Skip("needs root and setpriv to run as another user")
    d = tmpdir()
    os.chmod(d, 0o755)
    locked = os.path.join(d, "locked")
    os.mkdir(locked, 0o700)
    secret = write(os.path.join(d, "secret.log"), "x\n")
    os.chmod(secret, 0o600)
    c = conf(f"""
<source>
  @type tail
  path {secret}
  pos_file {locked}/state/t.pos
  tag t
  <parse>
    @type none
  </parse>
</source>
<match t>
  @type file
  path {locked}/out/${{tag}}/x
  <buffer tag>
    @type file
    path {locked}/buffer
  </buffer>
</match>
""", d)
    os.chmod(c, 0o644)
    ok = run(["-c", c, "--dry-run"])
    assert ok.returncode == 0 and "is valid" in ok.stdout, ok.stderr
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", lstest.LOGSHIP,
                        "-c", c, "--dry-run"], capture_output=True, text=True, timeout=60, cwd="/",
                       env=lstest.sanitizer_env())
    lstest.check_sanitizer(p.stderr)
    assert p.returncode == 1, p.stdout + p.stderr
    e = p.stderr
    assert re.search(rf"pos_file '{locked}/state/t.pos': '{locked}' \(where it would be created\) "
                     r"is not writable by uid 65534", e), e
    assert re.search(rf"path '{secret}' is not readable by uid 65534", e), e
    assert re.search(r"\[file.0\] \S+:11: buffer path: ", e), e
    assert "the start would fail" in e, e


def _s3_conf(srv, d, checks=True, endpoint=None, extra=""):
    body = "" if checks else "  check_apikey_on_start false\n  check_bucket false\n"
    return conf(base.sample_source([T0 + i * 3600 for i in range(3)]) +
                base.s3_match(srv, d, body + "  path p/\n" + extra, "time",
                              "    timekey 1h\n    retry_wait 0.2\n    retry_max_times 2", endpoint=endpoint), d)


def test_startup_check_failure_stops_the_start_before_any_input():
    srv = S3Server.start()
    d = tmpdir()
    c = _s3_conf(srv, d)
    write(c, open(c).read().replace(f"s3_bucket {srv.bucket}", f"s3_bucket {srv.other_bucket}"))
    t0 = time.time()
    p = run(["-c", c], env=base.s3env(srv), timeout=60)
    assert p.returncode == 1, p.stderr[-3000:]
    assert time.time() - t0 < 30
    assert "AccessDenied" in p.stderr and "not starting" in p.stderr, p.stderr[-3000:]
    assert "logship started" not in p.stderr, p.stderr[-3000:]
    assert srv.list_objects() == []


def test_startup_check_with_the_store_away_starts_and_keeps_the_records():
    srv = S3Server.start()
    d = tmpdir()
    port = lstest.free_port()
    c = _s3_conf(srv, d, endpoint=f"http://127.0.0.1:{port}")
    p = run(["-c", c, "--oneshot"], env=base.s3env(srv), timeout=60)
    # a store that is away is not a configuration error: it starts, keeps the records, retries
    assert "starting anyway" in p.stderr and "logship started" in p.stderr, p.stderr[-3000:]
    assert p.returncode == 1, p.stderr[-3000:]   # retries exhausted: the records stay buffered


class _WrongRegion(http.server.BaseHTTPRequestHandler):
    """S3's answer to a request signed for the wrong region: 301 PermanentRedirect."""
    def _answer(self):
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PermanentRedirect</Code>'
                b'<Message>The bucket you are attempting to access must be addressed using the '
                b'specified endpoint.</Message></Error>')
        self.send_response(301)
        self.send_header("x-amz-bucket-region", "eu-west-1")
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_HEAD = do_PUT = _answer

    def log_message(self, *a):
        pass


def test_wrong_region_names_the_buckets_region():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WrongRegion)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    lstest.on_cleanup(srv.shutdown)
    fake = type("S", (), {"bucket": "b", "key": "AKIAEXAMPLE", "secret": "s",
                          "endpoint": f"http://127.0.0.1:{srv.server_port}"})
    d = tmpdir()
    c = _s3_conf(fake, d)
    p = run(["-c", c], env=base.s3env(fake), timeout=60)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "the bucket is in region 'eu-west-1', not 'us-east-1': set s3_region eu-west-1" in p.stderr, \
        p.stderr[-3000:]
    p = run(["-c", c, "--check-remote"], env=base.s3env(fake), timeout=60)
    assert p.returncode == 1 and "set s3_region eu-west-1" in p.stderr, p.stderr[-3000:]


def test_check_remote_resolves_credentials_and_runs_the_checks():
    srv = S3Server.start()
    d = tmpdir()
    c = _s3_conf(srv, d)
    p = run(["-c", c, "--check-remote"], env=base.s3env(srv), timeout=60)
    assert p.returncode == 0 and "the remote checks passed" in p.stdout, p.stdout + p.stderr[-3000:]
    assert "credentials from config" in p.stderr, p.stderr
    assert srv.list_objects() == []          # nothing read, nothing uploaded
    bad = run(["-c", c, "--check-remote"], env=base.s3env(srv, {"S3_SECRET": "wrong" * 8}), timeout=60)
    assert bad.returncode == 1 and "SignatureDoesNotMatch" in bad.stderr, bad.stderr[-3000:]
    away = run(["-c", _s3_conf(srv, d, endpoint=f"http://127.0.0.1:{lstest.free_port()}"), "--check-remote"],
               env=base.s3env(srv), timeout=60)
    assert away.returncode == 1 and "can't call S3 API" in away.stderr, away.stderr[-3000:]
    # plain --dry-run makes no request at all
    quiet = run(["-c", c, "--dry-run"], env=base.s3env(srv, {"S3_SECRET": "wrong" * 8}), timeout=60)
    assert quiet.returncode == 0 and "credentials from" not in quiet.stderr, quiet.stderr


def test_progress_lines_and_oneshot_totals():
    srv = S3Server.start()
    d = tmpdir()
    n = 12
    c = conf(base.sample_source([T0 + i * 3600 for i in range(n)]) +
             base.s3_match(srv, d, "  path p/\n", "time", "    timekey 1h"), d)
    p = base.oneshot(c, base.s3env(srv))
    objs = srv.list_objects("p/")
    assert len(objs) == n, objs
    lines = [l for l in p.stderr.splitlines() if "] delivered " in l]
    single = [l for l in lines if re.search(r"delivered s3://\S+ \(\d+ records, \d+ bytes, [\d.]+s\)", l)]
    summ = [re.search(r"delivered (\d+) more chunks? \((\d+) records", l) for l in lines]
    summ = [m for m in summ if m]
    # every chunk is accounted for once: named alone or counted in a summary
    assert len(single) + sum(int(m.group(1)) for m in summ) == n, lines
    assert len(single) >= 1 and len(lines) < n, lines   # at most one line a second, not one per chunk
    for l in single:
        key = re.search(r"delivered s3://[^/]+/(\S+)", l).group(1)
        assert key in {o["Key"] for o in objs}, (key, objs)
    m = re.search(r"oneshot totals: (\d+) records read, (\d+) delivered in (\d+) chunks \((\d+) bytes\), "
                  r"(\d+) retries, (\d+) failed writes", p.stderr)
    assert m, p.stderr[-3000:]
    assert (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (n, n, n), m.group(0)
    assert int(m.group(4)) == sum(o["Size"] for o in objs), (m.group(0), objs)


def test_one_log_line_per_failed_attempt():
    srv = S3Server.start()
    d = tmpdir()
    c = _s3_conf(srv, d, checks=False, endpoint=f"http://127.0.0.1:{lstest.free_port()}")
    p = run(["-c", c, "--oneshot"], env=base.s3env(srv), timeout=90)
    assert p.returncode == 1, p.stderr[-3000:]
    fails = [l for l in p.stderr.splitlines() if "Couldn't connect" in l or "Failed to connect" in l]
    tries = [l for l in fails if "failed to flush chunk" in l or "retries exhausted" in l]
    assert fails and len(fails) == len(tries), "\n".join(fails)
    per_chunk = {}
    for l in tries:
        cid = re.search(r"chunk ([0-9a-f]{32})", l).group(1)
        per_chunk.setdefault(cid, []).append(l)
    for cid, ls in per_chunk.items():
        nums = [int(x) for l in ls for x in re.findall(r"\(retry (\d+) in", l)]
        assert nums == sorted(set(nums)), ls   # one line per attempt, none repeated
    assert p.stderr.count("credentials from") == 1, p.stderr[-3000:]


def _get(port, path):
    import urllib.request, urllib.error
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_health_endpoint_says_which_output_is_not_delivering():
    import json
    srv = S3Server.start()
    d = tmpdir()
    port = lstest.free_port()
    away = lstest.free_port()
    c = conf(f"""
<source>
  @type monitor_agent
  port {port}
  unhealthy_after 1s
</source>
<source>
  @type sample
  tag t
  rate 20
</source>
<match t>
  @type copy
  <store>
    @type file
    @id local
    path {d}/out/t
    slow_flush_log_threshold 0
    <buffer>
      flush_mode interval
      flush_interval 0.3s
    </buffer>
  </store>
  <store>
    @type s3
    @id store
    aws_key_id k
    aws_sec_key s
    s3_bucket b
    s3_endpoint http://127.0.0.1:{away}
    force_path_style true
    check_apikey_on_start false
    check_bucket false
    <buffer>
      flush_mode interval
      flush_interval 0.3s
      retry_wait 0.2
      retry_forever true
    </buffer>
  </store>
</match>
""", d)
    os.chmod(c, 0o600)
    a = Agent(c).start()
    try:
        a.wait_log("logship started")
        # the store is away: after unhealthy_after the answer turns 503 and names the output
        def failing():
            st, body = _get(port, "/api/health")
            return (st, json.loads(body)) if st == 503 else None
        st, h = lstest.wait_until(failing, timeout=30, what="/api/health to answer 503")
        outs = {o["plugin_id"]: o for o in h["outputs"]}
        assert h["status"] == "failing" and outs["store"]["delivering"] is False, h
        assert "Couldn't connect" in outs["store"]["last_error"] or "connect" in outs["store"]["last_error"], h
        assert outs["store"]["retry_steps"] >= 1 and outs["store"]["oldest_undelivered_seconds"] >= 0, h
        assert outs["local"]["delivering"] is True and "last_error" not in outs["local"], h
        # fluentd's flush_time_count / slow_flush_count for the output that delivers
        st, body = _get(port, "/api/plugins.json")
        rows = {p["plugin_id"]: p for p in json.loads(body)["plugins"]}
        assert rows["local"]["slow_flush_count"] >= 1 and "flush_time_count" in rows["local"], rows["local"]
        assert "buffer flush took longer time than slow_flush_log_threshold" in a.log(), a.log()[-2000:]
    finally:
        a.kill9()   # a stop would wait for the store that is away


def test_health_endpoint_ok_when_everything_delivers():
    import json
    d = tmpdir()
    port = lstest.free_port()
    c = conf(f"""
<source>
  @type monitor_agent
  port {port}
</source>
<source>
  @type sample
  tag t
</source>
<match t>
  @type file
  path {d}/out/t
</match>
""", d)
    a = Agent(c).start()
    try:
        a.wait_log("logship started")
        st, body = _get(port, "/api/health")
        assert st == 200 and json.loads(body)["status"] == "ok", (st, body)
    finally:
        a.stop()


def test_backlog_shows_how_far_it_has_come():
    # 40 MiB to read while the output refuses for a while: the input pauses (overflow_action
    # block) with most of the file still to go, and says how far it has come
    d = tmpdir()
    log = os.path.join(d, "big.log")
    line = ("x" * 1000 + "\n").encode()
    with open(log, "wb") as f:
        f.write(line * (40 * 1024))
    c = conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/pos
  read_from_head true
  tag t
  <parse>
    @type none
  </parse>
</source>
<match t>
  @type fault
  fail_for 60s
  <buffer>
    @type memory
    chunk_limit_size 1m
    total_limit_size 4m
    overflow_action block
    retry_wait 0.5
  </buffer>
</match>
""", d)
    a = Agent(c).start()
    try:
        line_re = re.compile(rf"'{re.escape(log)}': ([\d.]+) of ([\d.]+) MiB read \((\d+)%\), ([\d.]+) MiB to go")
        m = lstest.wait_until(lambda: line_re.search(a.log()), timeout=30, what="a progress line")
        read, total, pct, togo = float(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(4))
        size = os.path.getsize(log) / 1048576
        assert abs(total - size) < 0.06 and 0 < read < total and abs(read + togo - total) < 0.2, m.group(0)
        assert abs(pct - 100 * read / total) <= 1, m.group(0)
    finally:
        a.kill9()


def test_make_install_puts_the_helper_where_logship_finds_it():
    d = tmpdir()
    build = os.path.dirname(lstest.LOGSHIP)
    p = subprocess.run(["make", "-s", "-C", lstest.ROOT, "install", f"DESTDIR={d}", "PREFIX=/usr/local",
                        f"BUILD={build}", "SANITIZE=", "NO_DEPS=1"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    exe = os.path.join(d, "usr/local/bin/logship")
    assert os.access(exe, os.X_OK) and os.access(os.path.join(d, "usr/local/lib/logship/logship-http"), os.X_OK)
    c = conf("""
<source>
  @type sample
  tag t
</source>
<match t>
  @type s3
  s3_bucket b
  aws_key_id k
  aws_sec_key s
</match>
""", d)
    os.chmod(c, 0o600)
    env = lstest.sanitizer_env(dict(os.environ))
    env.pop("LOGSHIP_HTTP_HELPER", None)
    r = subprocess.run([exe, "-c", c, "--dry-run"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr          # it finds ../lib/logship/logship-http
    os.unlink(os.path.join(d, "usr/local/lib/logship/logship-http"))
    r = subprocess.run([exe, "-c", c, "--dry-run"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "logship-http" in r.stderr, r.stderr
