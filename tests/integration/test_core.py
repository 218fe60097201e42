"""The core: command line, configuration errors, routing, filters, signals.

Runs the real binary on configurations written to temp dirs. Routing is
checked against fluentd's documented semantics (first <match> wins, filters
in file order, <label>/@label/@ERROR, relabel).
"""
import json, os, re, signal, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

def stdout_records(text):
    """Parse fluentd stdout lines: '2026-11-21 12:00:00.000000000 +0000 tag: {json}'."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4}) (\S+): (\{.*\})$", line)
        if m:
            out.append((m.group(2), json.loads(m.group(3))))
    return out

def oneshot(config_text, timeout=60, args=()):
    path = conf(config_text)
    p = run(["-c", path, "--oneshot"] + list(args), timeout=timeout)
    return p, stdout_records(p.stdout)

# ---- command line ----

def test_version_help_list():
    p = run(["--version"])
    assert p.returncode == 0 and re.match(r"logship \d+\.\d+", p.stdout)
    p = run(["--help"])
    assert p.returncode == 0 and "--dry-run" in p.stdout and "--oneshot" in p.stdout
    p = run(["--list-plugins"])
    for name in ("sample", "stdout", "null", "copy", "grep", "record_transformer"):
        assert re.search(rf"\b{name}\b", p.stdout), name

def test_describe_prints_table_and_unknown_fails():
    p = run(["--describe", "sample"])
    assert p.returncode == 0
    assert "rate" in p.stdout and "auto_increment_key" in p.stdout
    p = run(["--describe", "no_such_plugin"])
    assert p.returncode != 0 and "no_such_plugin" in p.stderr

def test_unknown_argument_fails():
    p = run(["--no-such-flag"])
    assert p.returncode == 2

# ---- configuration errors name file:line and fail --dry-run ----

ERRORS = {
    "unclosed": ("<source>\n  @type sample\n  tag a\n", r"cfg\.conf:\d+"),
    "bad_size": ("<match **>\n  @type stdout\n</match>\n<source>\n  @type sample\n  tag a\n  rate abc\n</source>\n", r"cfg\.conf:7"),
    "bad_escape": ('<source>\n  @type sample\n  tag "a\\qb"\n</source>\n', r"cfg\.conf:3"),
    "missing_type": ("<source>\n  tag a\n</source>\n", r"cfg\.conf:1.*@type"),
    "unknown_plugin": ("<source>\n  @type nosuch\n</source>\n", r"cfg\.conf:1.*nosuch"),
    "unknown_directive": ("<sauce>\n  @type sample\n</sauce>\n", r"cfg\.conf:1.*sauce"),
    "unknown_label": ("<source>\n  @type sample\n  tag a\n  @label @NOPE\n</source>\n", r"cfg\.conf:4.*@NOPE"),
    "required_missing": ("<source>\n  @type sample\n</source>\n", r"cfg\.conf:1.*tag"),
    "bad_pattern": ("<match /a(/>\n  @type null\n</match>\n", r"cfg\.conf:1"),
}

def test_config_errors_name_file_and_line():
    d = tmpdir()
    bad = []
    for name, (text, rx) in ERRORS.items():
        path = write(os.path.join(d, "cfg.conf"), text)
        p = run(["-c", path, "--dry-run"])
        if p.returncode == 0 or not re.search(rx, p.stderr):
            bad.append(f"{name}: rc={p.returncode} stderr={p.stderr.strip()[:300]}")
    assert not bad, "\n".join(bad)

def test_include_loop_is_an_error():
    d = tmpdir()
    write(os.path.join(d, "a.conf"), "@include b.conf\n")
    write(os.path.join(d, "b.conf"), "@include a.conf\n")
    p = run(["-c", os.path.join(d, "a.conf"), "--dry-run"])
    assert p.returncode == 1 and re.search(r"[ab]\.conf:1", p.stderr), p.stderr

def test_unknown_parameter_is_a_warning_with_line():
    path = conf("<source>\n  @type sample\n  tag a\n  no_such_param 1\n</source>\n<match **>\n  @type null\n</match>\n")
    p = run(["-c", path, "--dry-run"])
    assert p.returncode == 0, p.stderr
    assert re.search(r"logship\.conf:4.*no_such_param", p.stderr), p.stderr

def test_env_interpolation_and_include_relative():
    d = tmpdir()
    write(os.path.join(d, "sub", "out.conf"), "<match **>\n  @type stdout\n</match>\n")
    path = write(os.path.join(d, "main.conf"),
                 '<source>\n  @type sample\n  tag "#{ENV["LS_TEST_TAG"] || "dflt"}"\n  count 1\n</source>\n@include sub/*.conf\n')
    p = run(["-c", path, "--oneshot"], env=dict(os.environ, LS_TEST_TAG="from.env"))
    recs = stdout_records(p.stdout)
    assert p.returncode == 0, p.stderr
    assert recs and recs[0][0] == "from.env", p.stdout

# ---- routing ----

def test_first_match_wins_and_filter_order():
    p, recs = oneshot("""
<source>
  @type sample
  tag app.web
  sample {"n":1}
  count 3
</source>
<filter app.**>
  @type record_transformer
  <record>
    step one
  </record>
</filter>
<filter app.*>
  @type record_transformer
  <record>
    step ${record["step"]}-two
  </record>
</filter>
<match app.web>
  @type stdout
</match>
<filter app.**>
  @type record_transformer
  <record>
    never reached
  </record>
</filter>
<match app.**>
  @type null
</match>
""")
    assert p.returncode == 0, p.stderr
    assert len(recs) == 3
    for tag, r in recs:
        assert tag == "app.web"
        assert r == {"n": 1, "step": "one-two"}, r

def test_labels_error_label_and_relabel():
    p, recs = oneshot("""
<source>
  @type sample
  tag in.a
  sample {"v":"x"}
  count 2
  @label @STAGE1
</source>
<source>
  @type sample
  tag in.b
  sample {"v":"root"}
  count 1
</source>
<label @STAGE1>
  <match in.**>
    @type relabel
    @label @STAGE2
  </match>
</label>
<label @STAGE2>
  <filter **>
    @type record_transformer
    <record>
      stage two
    </record>
  </filter>
  <match **>
    @type stdout
  </match>
</label>
<match in.b>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    a = [r for t, r in recs if t == "in.a"]
    b = [r for t, r in recs if t == "in.b"]
    assert a == [{"v": "x", "stage": "two"}] * 2, recs
    assert b == [{"v": "root"}], recs

def test_unmatched_records_warn_once_per_tag():
    p, recs = oneshot("""
<source>
  @type sample
  tag lost.tag
  count 5
</source>
<match other>
  @type stdout
</match>
""")
    assert p.returncode == 0
    assert p.stderr.count('no patterns matched tag="lost.tag"') == 1, p.stderr

def test_grep_regexp_and_exclude():
    p, recs = oneshot("""
<source>
  @type sample
  tag g
  sample [{"path":"/api/a","code":200},{"path":"/static/x.css","code":200},{"path":"/api/b","code":500},{"path":"/health","code":200}]
  count 8
</source>
<filter g>
  @type grep
  <regexp>
    key path
    pattern /^\\/api\\//
  </regexp>
  <exclude>
    key code
    pattern /^5\\d\\d$/
  </exclude>
</filter>
<match g>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    assert [r["path"] for _, r in recs] == ["/api/a", "/api/a"], recs

def test_record_transformer_placeholders():
    p, recs = oneshot("""
<source>
  @type sample
  tag web.nginx.access
  sample {"a":1,"b":"keep","gone":"x"}
  count 1
</source>
<filter **>
  @type record_transformer
  remove_keys gone
  <record>
    host ${hostname}
    part1 ${tag_parts[1]}
    last ${tag_parts[-1]}
    prefix ${tag_prefix[1]}
    suffix ${tag_suffix[1]}
    tag ${tag}
    copy ${a}
    text a=${a}
    field ${record["a"]}
    past ${tag_parts[7]}
  </record>
</filter>
<match **>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    r = recs[0][1]
    import socket
    assert r["host"] == socket.gethostname()
    assert r["part1"] == "nginx" and r["last"] == "access"
    assert r["prefix"] == "web.nginx" and r["suffix"] == "nginx.access"
    assert r["tag"] == "web.nginx.access"
    # fluentd v1: ${a} is an unknown placeholder (v0.12's shortcut went in v0.14.10), nil
    # alone and nothing inside a string, warned about; ${tag_parts[N]} past the end is nil
    assert r["copy"] is None and r["text"] == "a=" and r["field"] == 1, r
    assert r["past"] is None, r
    assert re.search(r"logship\.conf:\d+: unknown placeholder `\$\{a\}`.*record\[", p.stderr), \
        p.stderr
    assert "gone" not in r and r["b"] == "keep"

def test_record_transformer_ruby_is_a_clear_error():
    # blocks, unknown methods and unknown names: refused at start, not failed per record
    for expr in ('record["a"].gsub(/x/) { |m| m.upcase }', 'record["a"].each_slice(2)',
                 'time.nonsense', 'message.downcase', 'a.b(1)'):
        path = conf('<filter **>\n  @type record_transformer\n  enable_ruby true\n  <record>\n'
                    f'    x ${{{expr}}}\n  </record>\n</filter>\n<match **>\n  @type null\n</match>\n')
        p = run(["-c", path, "--dry-run"])
        assert p.returncode == 1 and re.search(r"logship\.conf:5.*Ruby that logship does not "
                                               r"evaluate", p.stderr), (expr, p.stderr)


def test_record_transformer_ruby_subset():
    """enable_ruby's expressions that real files write, against Ruby's results: the event
    time 2024-03-08 12:34:56.75 UTC (set by renew_time_key; .75 is exact in a double) seen from TZ=Asia/Tokyo, as
    Time.at(time) is local there. Values computed by hand from Ruby's documented behaviour
    (Time#strftime %L/%N/%:z, Time#iso8601, String#to_i, #strip...)."""
    path = conf("""
<source>
  @type sample
  tag web.nginx.access
  sample {"t":1709901296.75,"level":"  WARN \\t","n":"42abc","msg":"h\u00e9llo","dur":"2.5 min","u":"0_12","hx":"0x1A"}
  count 1
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>
<filter **>
  @type record_transformer
  enable_ruby true
  <record>
    ts ${time.strftime('%Y-%m-%dT%H:%M:%S.%L%z')}
    frac ${time.strftime("%3N|%6N|%N|%:z|%Z|%%|%s")}
    iso ${time.iso8601}
    utc ${time.utc.iso8601}
    utc_s ${time.utc}
    local_s ${time}
    epoch ${time.to_i}
    epoch_text at ${time.to_i}
    lvl ${record["level"].strip.downcase}
    n ${record["n"].to_i}
    none ${record["missing"].to_s}
    tp ${tag_parts[1].upcase}
    len ${record["msg"].length}
    now ${Time.now.to_i}
    epoch_utc ${time.utc.strftime('%s')}
    dur ${record["dur"].to_f}
    u ${record["u"].to_i}
    hx ${record["hx"].to_f}
  </record>
</filter>
<match **>
  @type stdout
</match>
""")
    before = int(time.time())
    p = run(["-c", path, "--oneshot"], env={"TZ": "Asia/Tokyo"})
    assert p.returncode == 0, p.stderr
    r = stdout_records(p.stdout)[0][1]
    assert r["ts"] == "2024-03-08T21:34:56.750+0900", r
    assert r["frac"] == "750|750000|750000000|+09:00|JST|%|1709901296", r
    assert r["iso"] == "2024-03-08T21:34:56+09:00" and r["utc"] == "2024-03-08T12:34:56Z", r
    assert r["utc_s"] == "2024-03-08 12:34:56 UTC" and r["local_s"] == "2024-03-08 21:34:56 +0900", r
    assert r["epoch"] == 1709901296 and r["epoch_text"] == "at 1709901296", r   # typed when alone
    assert r["lvl"] == "warn" and r["n"] == 42 and r["none"] == "" and r["tp"] == "NGINX", r
    assert r["len"] == 5, r     # characters, not bytes
    assert before <= r["now"] <= int(time.time()) + 1, r
    assert r["epoch_utc"] == "1709901296", r     # glibc's %s would mktime() the UTC fields
    assert r["dur"] == 2.5 and r["u"] == 12 and r["hx"] == 0.0, r


def test_record_transformer_ruby_record_and_dig():
    # ${record} is the Hash (an object when it is the whole value, Hash#to_s inside text);
    # record.dig(...) walks it, nil where a step is missing (public td-agent files use both)
    path = conf("""
<source>
  @type sample
  tag t
  sample {"Response":{"Result":"ok","Data":{"Life":[5,6]}},"n":1}
  count 1
</source>
<filter t>
  @type record_transformer
  enable_ruby true
  <record>
    Result ${record.dig("Response","Result")}
    Life ${record.dig("Response", "Data", "Life", -1)}
    missing ${record.dig('nope', 'x')}
    whole ${record}
    text rec=${record}
  </record>
</filter>
<match t>
  @type stdout
</match>
""")
    p = run(["-c", path, "--oneshot"])
    assert p.returncode == 0, p.stderr
    r = stdout_records(p.stdout)[0][1]
    orig = {"Response": {"Result": "ok", "Data": {"Life": [5, 6]}}, "n": 1}
    assert r["Result"] == "ok" and r["Life"] == 6 and r["missing"] is None, r
    assert r["whole"] == orig, r
    assert r["text"] == 'rec={"Response"=>{"Result"=>"ok", "Data"=>{"Life"=>[5, 6]}}, "n"=>1}', r


def test_record_transformer_ruby_nil_method_goes_to_error_stream():
    """${record["missing"].strip} raises NoMethodError in fluentd: the event goes to the
    error stream (@ERROR), not out with a made-up value."""
    p, recs = oneshot("""
<source>
  @type sample
  tag t
  sample {"a":"x"}
  count 1
</source>
<filter **>
  @type record_transformer
  enable_ruby true
  <record>
    b ${record["missing"].strip}
  </record>
</filter>
<match t>
  @type stdout
</match>
<label @ERROR>
  <match **>
    @type stdout
    tag_key err
  </match>
</label>
""")
    assert len(recs) == 1 and "b" not in recs[0][1], (recs, p.stderr)

def test_oneshot_totals_count_stdout_records_not_writes():
    # stdout writes a batch of records at once; the totals counted one per batch
    p, out = oneshot("""
<source>
  @type sample
  tag t
  size 7
  count 7
</source>
<match t>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    assert len(out) == 7
    assert "oneshot totals: 7 records read, 7 delivered" in p.stderr, p.stderr


def test_copy_to_two_stores():
    p, recs = oneshot("""
<source>
  @type sample
  tag c
  count 2
</source>
<match c>
  @type copy
  <store>
    @type stdout
  </store>
  <store ignore_error>
    @type stdout
  </store>
</match>
""")
    assert p.returncode == 0, p.stderr
    assert len(recs) == 4

# ---- fluentd v1 and v0.12 configurations ----

def test_v012_style_config_runs():
    p, recs = oneshot("""
<source>
  type dummy
  tag legacy
  dummy {"hello":"world"}
  count 2
</source>
<match legacy>
  type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    assert recs == [("legacy", {"hello": "world"})] * 2
    assert "deprecated" in p.stderr

# ---- signals and daemon ----

def test_sigterm_graceful_and_sigusr1_and_bad_reload():
    path = conf("""
<source>
  @type sample
  tag s
  rate 20
</source>
<match s>
  @type stdout
</match>
""")
    a = Agent(path).start()
    wait_until(lambda: len(stdout_records(a.stdout())) >= 3, what="records")
    a.signal(signal.SIGUSR1)
    a.wait_log("flushing all buffers")
    # a broken configuration on HUP keeps the running one
    with open(path, "a") as f:
        f.write("<match\n")
    a.signal(signal.SIGHUP)
    a.wait_log("keeping the running one")
    n = len(stdout_records(a.stdout()))
    wait_until(lambda: len(stdout_records(a.stdout())) > n + 3, what="records after reload")
    assert a.stop() == 0
    assert "logship stopped" in a.log()

def test_daemon_with_pidfile_and_logfile():
    d = tmpdir()
    path = conf("<source>\n  @type sample\n  tag d\n  rate 10\n</source>\n<match d>\n  @type null\n</match>\n", d)
    pid_path = os.path.join(d, "ls.pid")
    log_path = os.path.join(d, "ls.log")
    p = run(["-c", path, "-d", pid_path, "-o", log_path], timeout=10)
    assert p.returncode == 0, p.stderr
    pid = int(wait_until(lambda: os.path.exists(pid_path) and open(pid_path).read().strip(), what="pid file"))
    lstest.on_cleanup(lambda: os.kill(pid, signal.SIGKILL))
    wait_until(lambda: os.path.exists(log_path) and "logship started" in open(log_path).read(), what="log")
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="daemon exit")
    assert "logship stopped" in open(log_path).read()

# ---- libraries ----

def test_unused_plugin_libraries_are_not_mapped():
    # rds_slowlog's libmariadb and monitor_agent's libmicrohttpd are dlopen()ed by those
    # plugins only: an agent tailing into a file maps neither, nor anything beyond what it links
    if lstest.WRAP:
        raise lstest.Skip("the wrapper maps libraries of its own")
    d = tmpdir()
    write(os.path.join(d, "in.log"), "")
    path = conf(f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/in.pos
  tag t
  <parse>
    @type none
  </parse>
</source>
<match t>
  @type file
  path {d}/out/o
  <buffer>
    @type file
    path {d}/buf
  </buffer>
</match>
""", d)
    a = Agent(path).start()
    a.wait_log("logship started")
    mapped = lstest.mapped_libs(a.p.pid)
    linked = lstest.linked_libs()
    assert a.stop() == 0, a.log()
    names = "\n".join(sorted(mapped))
    for lib in ("libmariadb.so", "libmicrohttpd.so"):
        assert lib not in names, f"{lib} is mapped by an agent that does not use it:\n{names}"
        assert lib not in "\n".join(linked), f"logship links {lib}; its plugin should dlopen it"
    assert mapped <= linked, f"mapped beyond the link: {sorted(mapped - linked)}"
