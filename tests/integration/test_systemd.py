"""@type systemd (fluent-plugin-systemd's in_systemd) and the systemd_entry filter, on real
journal files: systemd-journal-remote (systemd's own writer) turns journal export text into
journal files in a directory the test owns, and journalctl (an independent reader) says
what each entry holds. Checked: the fields and times against journalctl, matches (AND within a
hash, OR between hashes and within a field's array), <entry>, the start position (head, the
last entry, the saved cursor, a fluentd storage file), following new journal files, and a
kill -9 between the buffer's commit and the cursor's save: nothing lost, nothing twice."""
import glob, json, os, struct, subprocess

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

REMOTE = "/lib/systemd/systemd-journal-remote"
T0 = 1704164645250000          # 2024-01-02T03:04:05.25Z in microseconds
BOOT = "0123456789abcdef0123456789abcdef"


def _need():
    if not os.access(REMOTE, os.X_OK):
        raise lstest.Skip("systemd-journal-remote is not installed (install-deps.sh test)")


def journal(d, entries, name="remote.journal"):
    """entries: (realtime usec, [(field, value str|bytes), ...]); written as one journal file."""
    out = b""
    for rt, fields in entries:
        out += b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n" % (
            rt, rt - T0 + 1000, BOOT.encode())
        for k, v in fields:
            v = v if isinstance(v, bytes) else v.encode()
            if b"\n" in v or any(c < 32 and c != 9 for c in v):
                out += k.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n"
            else:
                out += k.encode() + b"=" + v + b"\n"
        out += b"\n"
    os.makedirs(d, exist_ok=True)
    src = write(os.path.join(os.path.dirname(d.rstrip("/")), name + ".export"), "")
    with open(src, "wb") as f:
        f.write(out)
    p = subprocess.run([REMOTE, "--output=" + os.path.join(d, name), src], capture_output=True)
    assert p.returncode == 0, p.stderr


def journalctl(d):
    p = subprocess.run(["journalctl", "--directory", d, "-o", "json", "--no-pager"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


UNITS = ["kubelet.service", "docker.service", "sshd.service"]


def entries(n, start=0, t=T0):
    return [(t + i * 1000000, [("MESSAGE", f"hello {i}"), ("_SYSTEMD_UNIT", UNITS[i % 3]),
                               ("PRIORITY", str(i % 7)), ("_PID", str(100 + i)),
                               ("SYSLOG_IDENTIFIER", f"id{i % 2}"), ("MULTI", "a\nb")])
            for i in range(start, start + n)]


def src_conf(d, body, out_extra="", buffer="memory"):
    return conf(f"""
<source>
  @type systemd
  path {d}/journal
  tag journal
{body}
</source>
<match journal>
  @type file
  path {d}/out/o
  append true
  <format>
    @type json
  </format>
  <inject>
    time_key t
    time_type float
  </inject>
  <buffer []>
    @type {buffer}
    path {d}/buf
    flush_mode immediate
  </buffer>
  {out_extra}
</match>
""", d)


def read_out(d):
    recs = []
    for f in sorted(glob.glob(os.path.join(d, "out", "o*"))):
        with open(f) as fh:
            recs += [json.loads(line) for line in fh if line.strip()]
    return recs


def test_fields_and_times_as_journalctl_reads_them_and_matches():
    _need()
    d = tmpdir()
    journal(f"{d}/journal", entries(6))
    p = run(["-c", src_conf(d, "  read_from_head true"), "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    got = read_out(d)
    ref = journalctl(f"{d}/journal")
    assert len(got) == 6 == len(ref)
    for g, r in zip(got, ref):
        fields = {k: v for k, v in r.items() if not k.startswith("__")}
        assert {k: v for k, v in g.items() if k != "t"} == fields, (g, r)
        assert abs(g["t"] - int(r["__REALTIME_TIMESTAMP"]) / 1e6) < 1e-6, (g["t"], r)
    # one hash: its pairs ANDed, an array ORed; two hashes ORed; names upper-cased
    d2 = tmpdir()
    journal(f"{d2}/journal", entries(6))
    body = ('  read_from_head true\n  matches [{"_systemd_unit": ["kubelet.service", '
            '"sshd.service"], "PRIORITY": 3}, {"_PID": 101}]')
    p = run(["-c", src_conf(d2, body), "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert [r["MESSAGE"] for r in read_out(d2)] == ["hello 1", "hello 3"]


def test_entry_mutations_and_the_systemd_entry_filter():
    _need()
    d = tmpdir()
    journal(f"{d}/journal", entries(2))
    body = """  read_from_head true
  <entry>
    field_map {"MESSAGE": "log", "_PID": ["process", "pid"]}
    fields_strip_underscores true
    fields_lowercase true
  </entry>"""
    p = run(["-c", src_conf(d, body), "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    r = read_out(d)[1]
    assert list(r)[:3] == ["log", "process", "pid"] and r["log"] == "hello 1", r
    assert r["pid"] == "101" and r["systemd_unit"] == "docker.service" and "_PID" not in r, r
    assert r["boot_id"] == BOOT and r["syslog_identifier"] == "id1", r
    # the filter, on records that did not come from the journal; field_map_strict
    c = conf(f"""
<source>
  @type sample
  sample {{"_HOSTNAME": "web1", "MESSAGE": "m", "X": 1}}
  count 1
  tag s
</source>
<filter s>
  @type systemd_entry
  field_map {{"_HOSTNAME": "host"}}
  field_map_strict true
</filter>
<match s>
  @type file
  path {d}/f/o
  append true
  <format>
    @type json
  </format>
  <buffer []>
    flush_mode immediate
  </buffer>
</match>
""", d)
    p = run(["-c", c, "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    (line,) = open(glob.glob(f"{d}/f/o*")[0]).read().splitlines()
    assert json.loads(line) == {"host": "web1"}, line


def test_start_positions_cursor_in_fluentd_storage_format_and_following_new_files():
    _need()
    d = tmpdir()
    journal(f"{d}/journal", entries(4))
    st = f"{d}/cursor.json"
    body = f"""  <storage>
    @type local
    persistent true
    path {st}
  </storage>"""
    # no cursor, no read_from_head: the plugin's start at the last entry
    a = Agent(src_conf(d, body))
    a.start()
    wait_until(lambda: len(read_out(d)) >= 1, what="the last entry")
    assert [r["MESSAGE"] for r in read_out(d)] == ["hello 3"]
    saved = json.load(open(st))
    assert saved["journal"].startswith("s=") and ";i=4;" in saved["journal"], saved
    # a new journal file in the directory is followed while running
    journal(f"{d}/journal", entries(2, start=10, t=T0 + 60 * 1000000), "remote-2.journal")
    wait_until(lambda: len(read_out(d)) >= 3, timeout=20, what="the new file's entries")
    assert a.stop() == 0, a.log()
    assert [r["MESSAGE"] for r in read_out(d)] == ["hello 3", "hello 10", "hello 11"]
    # a storage file as fluentd writes it ({"journal": cursor}) is read as the position
    ref = journalctl(f"{d}/journal")
    write(st, json.dumps({"journal": ref[1]["__CURSOR"]}))
    p = run(["-c", src_conf(d, body), "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert [r["MESSAGE"] for r in read_out(d)][3:] == ["hello 2", "hello 3", "hello 10", "hello 11"]
    # a cursor that names no entry any more: a warning, then read_from_head decides
    write(st, json.dumps({"journal": "s=00;i=1"}))
    p = run(["-c", src_conf(d, body + "\n  read_from_head true"), "--oneshot"])
    assert p.returncode == 0 and "Could not seek to cursor" in p.stderr, p.stderr[-2000:]
    assert len(read_out(d)) == 7 + 6


def test_kill9_after_the_buffer_commit_before_the_cursor_save_is_exactly_once():
    _need()
    d = tmpdir()
    journal(f"{d}/journal", entries(5))
    body = f"""  read_from_head true
  <storage>
    @type local
    path {d}/cursor.json
  </storage>"""
    c = src_conf(d, body, buffer="file")
    # dies right after the records are durable in the file buffer, before the cursor is written
    p = run(["-c", c], env=dict(os.environ, LOGSHIP_TEST_SYSTEMD_KILL_AT="committed"), timeout=30)
    assert p.returncode == -9, (p.returncode, p.stderr[-2000:])
    assert "journal" not in json.load(open(f"{d}/cursor.json"))    # no cursor saved yet
    journal(f"{d}/journal", entries(2, start=5, t=T0 + 60 * 1000000), "remote-2.journal")
    p = run(["-c", c, "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "already buffered" in p.stderr, p.stderr[-2000:]
    msgs = [r["MESSAGE"] for r in read_out(d)]
    assert sorted(msgs) == sorted(f"hello {i}" for i in range(7)), msgs
    assert json.load(open(f"{d}/cursor.json"))["logship_seq"] == 7


def test_configuration_errors_and_a_daemonset_shape():
    d = tmpdir()
    p = run(["-c", src_conf(d, '  matches [{"_SYSTEMD_UNIT": {"x": 1}}]'), "--dry-run"])
    assert p.returncode != 0 and "matches" in p.stderr and ".conf:6:" in p.stderr, p.stderr
    p = run(["-c", src_conf(d, '  matches {"a": 1}'), "--dry-run"])
    assert p.returncode != 0 and "matches" in p.stderr, p.stderr
    p = run(["-c", src_conf(d, "  <storage>\n    persistent true\n  </storage>"), "--dry-run"])
    assert p.returncode != 0 and "path for <storage> required" in p.stderr, p.stderr
    p = run(["-c", src_conf(d, "  <entry>\n    field_map {\"A\": 1}\n  </entry>"), "--dry-run"])
    assert p.returncode != 0 and "must be strings" in p.stderr, p.stderr
    # fluentd-kubernetes-daemonset's systemd.conf shape
    c = conf(f"""
<source>
  @type systemd
  @id in_systemd_kubelet
  matches [{{ "_SYSTEMD_UNIT": "kubelet.service" }}]
  <storage>
    @type local
    persistent true
    path {d}/fluentd-journald-kubelet-cursor.json
  </storage>
  <entry>
    fields_strip_underscores true
  </entry>
  read_from_head true
  tag kubelet
</source>
<source>
  @type systemd
  filters [{{ "_SYSTEMD_UNIT": "docker.service" }}]
  pos_file {d}/gcp-journald-docker.pos
  read_from_head true
  strip_underscores true
  tag docker
</source>
<match **>
  @type null
</match>
""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(f"{d}/fluentd-journald-kubelet-cursor.json")   # a dry run writes nothing
