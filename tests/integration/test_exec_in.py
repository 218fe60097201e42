"""in_exec (fluentd's `@type exec`): real commands run through /bin/sh, their output parsed
as fluentd's in_exec parses it (tsv by default, the v0.12 flat keys, a JSON stream, <extract>
tag and time), run_interval, command_timeout, connect_mode, encoding, a full buffer
stopping the reading, and the process group stopped with the agent."""
import json, os, re, signal, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write


def stdout_events(text):
    """(time string, tag, record) from stdout lines '2026-... +0000 tag: {json}'."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4}) (\S+): (\{.*\})$", line)
        if m:
            out.append((m.group(1), m.group(2), json.loads(m.group(3))))
    return out


def oneshot(source, timeout=60, env=None):
    c = conf(source + """
<match **>
  @type stdout
</match>
""")
    p = run(["-c", c, "--oneshot"], timeout=timeout, env=dict(os.environ, TZ="UTC", **(env or {})))
    return p, stdout_events(p.stdout)


def test_tsv_with_flat_v012_keys_every_line_and_the_last_without_newline():
    p, ev = oneshot(r"""
<source>
  @type exec
  command printf 'a\tb\n1\t2\nx\ty\r\nlast\tz'
  format tsv
  keys k1,k2
  tag exec.tsv
</source>
""")
    assert p.returncode == 0, p.stderr
    assert [(t, r) for _, t, r in ev] == [
        ("exec.tsv", {"k1": "a", "k2": "b"}), ("exec.tsv", {"k1": "1", "k2": "2"}),
        ("exec.tsv", {"k1": "x", "k2": "y"}), ("exec.tsv", {"k1": "last", "k2": "z"})]
    # no time key: the time is when the line was read
    now = time.time()
    for ts, _, _ in ev:
        t = time.mktime(time.strptime(ts[:19], "%Y-%m-%d %H:%M:%S")) - time.timezone
        assert abs(t - now) < 30, ts
    assert "oneshot totals: 4 records read, 4 delivered" in p.stderr


def test_json_stream_with_extract_tag_and_time():
    d = tmpdir()
    script = write(os.path.join(d, "gen.sh"), r"""
printf '{"a":1,"tag":"t.x","ts":1700000000.5}\n'
printf '{\n  "b": [1, 2],\n  "tag": "t.y",\n  "ts": "1700000001"\n}\n'
echo 'not json'
printf '{"c":"no tag field"}  {"d":4,"tag":"t.z","ts":1700000002}\n'
printf '{"e":5,"tag":"t.cut"'
""")
    p, ev = oneshot(f"""
<source>
  @type exec
  command sh {script}
  tag fallback
  <parse>
    @type json
  </parse>
  <extract>
    tag_key tag
    time_key ts
  </extract>
</source>
""")
    assert p.returncode == 0, p.stderr
    assert [(ts[:23], t, r) for ts, t, r in ev] == [
        ("2023-11-14 22:13:20.500", "t.x", {"a": 1}),
        ("2023-11-14 22:13:21.000", "t.y", {"b": [1, 2]}),
        (ev[2][0][:23], "fallback", {"c": "no tag field"}),
        ("2023-11-14 22:13:22.000", "t.z", {"d": 4})]
    assert "invalid JSON object: \"not json\"" in p.stderr, p.stderr
    assert "JSON stream ended in the middle of a document" in p.stderr, p.stderr


def test_parse_section_defaults_are_in_execs_no_time_key_and_float():
    # json's own default time_key is "time"; in_exec's <parse> has none, so "time" stays
    p, ev = oneshot("""
<source>
  @type exec
  command echo '{"time":"kept","v":1}'
  tag t
  <parse>
    @type json
  </parse>
</source>
<source>
  @type exec
  command echo '{"ts":"1700000000.25","v":2}'
  tag t
  <parse>
    @type json
    time_key ts
  </parse>
</source>
""")
    assert p.returncode == 0, p.stderr
    got = sorted(((ts, r) for ts, _, r in ev), key=lambda x: x[1]["v"])
    assert got[0][1] == {"time": "kept", "v": 1}
    assert got[1] == ("2023-11-14 22:13:20.250000000 +0000", {"v": 2})


def test_flat_regexp_format_takes_the_time_field_as_a_string():
    # fluentd's compat layer: a /regexp/ format makes <extract> time_key time, time_type string
    p, ev = oneshot(r"""
<source>
  @type exec
  command echo '2024-01-02T03:04:05+0900 hello world'
  format /^(?<time>\S+) (?<msg>.*)$/
  time_format %Y-%m-%dT%H:%M:%S%z
  tag t
</source>
""")
    assert p.returncode == 0, p.stderr
    assert [(ts, r) for ts, _, r in ev] == [
        ("2024-01-01 18:04:05.000000000 +0000", {"msg": "hello world"})]


def test_read_with_stderr_and_the_default_discard():
    src = """
<source>
  @type exec
  command echo out; echo err >&2
  format none
  tag t
  {mode}
</source>
"""
    p, ev = oneshot(src.format(mode=""))
    assert p.returncode == 0 and [r for _, _, r in ev] == [{"message": "out"}], p.stderr
    p, ev = oneshot(src.format(mode="connect_mode read_with_stderr"))
    assert p.returncode == 0, p.stderr
    assert sorted(r["message"] for _, _, r in ev) == ["err", "out"]


def test_bytes_are_kept_and_encoding_converts():
    # fluentd without `encoding` turns every byte over 0x7F into U+FFFD (its issue 4460)
    p, ev = oneshot(r"""
<source>
  @type exec
  command printf 'caf\303\251\n'
  format none
  tag utf8
</source>
<source>
  @type exec
  command printf '\351t\351\n'
  format none
  tag latin1
  encoding ISO-8859-1
</source>
""")
    assert p.returncode == 0, p.stderr
    assert sorted((t, r["message"]) for _, t, r in ev) == [("latin1", "été"), ("utf8", "café")]


def test_run_interval_repeats_and_skips_while_the_last_run_is_going():
    d = tmpdir()
    c = conf(f"""
<source>
  @type exec
  command date +%s.%N
  keys n
  tag fast
  run_interval 0.3s
</source>
<source>
  @type exec
  command sleep 1; echo slow
  keys n
  tag slow
  run_interval 0.2s
</source>
<match **>
  @type stdout
</match>
""", d)
    a = Agent(c).start()
    try:
        started = time.time()
        wait_until(lambda: len([e for e in stdout_events(a.stdout()) if e[1] == "fast"]) >= 3,
                   what="three runs")
        a.wait_log("previous child process is still running. skipped")
        fast = [float(r["n"]) for _, t, r in stdout_events(a.stdout()) if t == "fast"]
        # the first run one interval after start, not at once (fluentd's timer)
        assert fast[0] >= started + 0.2, (fast[0], started)
        # runs one interval apart on average (one run's start can be late under load)
        assert (fast[-1] - fast[0]) / (len(fast) - 1) >= 0.2, fast
    finally:
        a.stop()


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_stop_ends_the_commands_process_group():
    d = tmpdir()
    pidf = os.path.join(d, "pid")
    c = conf(f"""
<source>
  @type exec
  command echo $$ > {pidf}; while true; do echo tick; sleep 0.1; done
  format none
  tag t
</source>
<match **>
  @type stdout
</match>
""", d)
    a = Agent(c).start()
    wait_until(lambda: "tick" in a.stdout(), what="output")
    pgid = int(open(pidf).read())
    assert _group_alive(pgid)
    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0, a.log()
    wait_until(lambda: not _group_alive(pgid), timeout=5, what="the command's group gone")


def test_command_timeout_kills_a_command_that_closed_its_output():
    d = tmpdir()
    pidf = os.path.join(d, "pid")
    t0 = time.time()
    p, ev = oneshot(f"""
<source>
  @type exec
  command echo done; exec >&-; echo $$ > {pidf}; sleep 60
  format none
  tag t
  command_timeout 0.5
</source>
""")
    assert p.returncode == 0, p.stderr
    assert [r for _, _, r in ev] == [{"message": "done"}]
    assert "child process timed out" in p.stderr, p.stderr
    assert time.time() - t0 < 20
    pgid = int(open(pidf).read())
    wait_until(lambda: not _group_alive(pgid), timeout=5, what="the command's group gone")


def test_a_full_buffer_stops_the_reading_and_nothing_is_lost():
    d = tmpdir()
    out = os.path.join(d, "out")
    n = 30000
    c = conf(f"""
<source>
  @type exec
  command seq 1 {n}
  keys n
  tag t
</source>
<match t>
  @type fault
  fail_for 2
  path {out}
  <format>
    @type single_value
    message_key n
  </format>
  <buffer>
    @type file
    path {d}/buf
    chunk_limit_size 16k
    total_limit_size 64k
    overflow_action block
    flush_interval 0.1
    retry_wait 0.1
    retry_max_interval 0.3
  </buffer>
</match>
""", d)
    p = run(["-c", c, "--oneshot"], timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    got = [int(x) for x in open(out).read().split()]
    assert sorted(got) == list(range(1, n + 1)), (len(got), len(set(got)))


def test_configuration_errors_name_the_line():
    for body, want in [
        ("command true\n  keys a", r"'tag' or 'tag_key' option is required on exec input"),
        ("command true\n  keys a\n  tag t\n  utc true\n  localtime true",
         r"both of utc and localtime are specified"),
        ("command true\n  keys a\n  tag t\n  encoding NO-SUCH-ENCODING", r"encoding"),
        ("tag t\n  keys a", r"'command' parameter is required"),
    ]:
        c = conf(f"<source>\n  @type exec\n  {body}\n</source>\n<match **>\n  @type null\n</match>\n")
        p = run(["-c", c, "--dry-run"])
        assert p.returncode != 0, body
        assert re.search(want, p.stderr) and re.search(r"\.conf:\d+", p.stderr), (body, p.stderr)


def test_the_loadavg_example_runs_as_it_is():
    d = tmpdir()
    src = write(os.path.join(d, "loadavg"), "0.52 0.58 0.59 2/311 12345\n")
    env = dict(os.environ, LOADAVG_FILE=src, LOGSHIP_OUT_DIR=os.path.join(d, "out"),
               LOGSHIP_STATE_DIR=os.path.join(d, "state"))
    p = run(["-c", os.path.join(lstest.ROOT, "conf", "exec-loadavg.conf"), "--oneshot"], env=env)
    assert p.returncode == 0, p.stderr
    outs = [os.path.join(d, "out", f) for f in os.listdir(os.path.join(d, "out"))]
    recs = [json.loads(l) for f in outs for l in open(f)]
    assert len(recs) == 1, recs
    r = recs[0]
    assert r.pop("hostname") == os.uname().nodename
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$", r.pop("time"))
    assert r == {"load1": 0.52, "load5": 0.58, "load15": 0.59, "running": 2, "tasks": 311,
                 "last_pid": 12345}


# ---- out_exec (fluentd's `@type exec` output) ----

def test_out_exec_runs_the_command_on_each_chunk_file_and_retries_failures():
    d = tmpdir()
    out = os.path.join(d, "got.tsv")
    script = write(os.path.join(d, "take.sh"), f"""#!/bin/sh
# fails the first time, sleeps past the timeout the second, then appends the file it is given
n=$(cat {d}/runs 2>/dev/null || echo 0); echo $((n+1)) > {d}/runs
[ "$n" = 0 ] && exit 3
[ "$n" = 1 ] && exec sleep 30
cat "$1" >> {out}
""")
    os.chmod(script, 0o755)
    c = conf(f"""
<source>
  @type sample
  tag t
  sample [{{"a":"x","b":1}},{{"a":"y z","b":2}}]
  count 4
  rate 100
</source>
<match t>
  @type exec
  command {script}
  command_timeout 1
  <format>
    @type tsv
    keys a,b
  </format>
  <buffer>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
  </buffer>
</match>
""", d)
    t0 = time.time()
    p = run(["-c", c, "--oneshot"], timeout=90)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "command exits with error code 3" in p.stderr, p.stderr[-2000:]
    assert "command timed out after 1 s" in p.stderr, p.stderr[-2000:]
    lines = open(out).read().splitlines()
    assert sorted(lines) == sorted(["x\t1", "y z\t2"] * 2), lines
    # the chunk's file is removed once the command is done
    assert not [f for f in os.listdir(f"{d}/buf") if f.endswith(".exec")], os.listdir(f"{d}/buf")
    assert time.time() - t0 < 60
