"""The tail input (fluentd's in_tail) end to end.

A real nginx writes the access log (tests/lib/nginx.py); logship tails it
with the nginx parser into the file output with a file buffer, and the test
compares the delivered records with the requests it sent: none lost, none
repeated, fields parsed. Rotation (mv + reopen, copytruncate, delete +
reopen) happens while requests keep coming. The pos_file is checked with an
independent implementation of fluentd's format, and a td-agent pos_file is
adopted. Line handling: a partial last line waits for its newline,
max_line_size, CRLF, NUL and invalid UTF-8.
"""
import glob, json, os, random, re, signal, subprocess, threading, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
from nginx import Nginx

POS_RE = re.compile(r"^([^\t]+)\t([0-9a-fA-F]+)\t([0-9a-fA-F]+)")   # fluentd's position_file.rb


def read_pos_file(path):
    """fluentd's PositionFile#load, independently: {path: (pos, inode)}; the last line wins."""
    out = {}
    with open(path, "rb") as f:
        for raw in f.read().decode("utf-8", "replace").split("\n"):
            m = POS_RE.match(raw)
            if not m:
                continue
            pos, ino = int(m.group(2), 16), int(m.group(3), 16)
            if pos == 0xFFFFFFFFFFFFFFFF:
                continue
            out[m.group(1)] = (pos, ino)
    return out


def source(path, d, parse="@type nginx", extra=""):
    return f"""
<source>
  @type tail
  path {path}
  pos_file {d}/tail.pos
  tag access
  read_from_head true
  refresh_interval 1
  rotate_wait 2
{extra}
  <parse>
    {parse}
  </parse>
</source>"""


def file_match(d, fmt="@type json"):
    return f"""
<match **>
  @type file
  path {d}/out/o
  <format>
    {fmt}
  </format>
  <buffer []>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3
    flush_at_shutdown true
  </buffer>
</match>"""


def delivered(d):
    recs = []
    for f in sorted(glob.glob(os.path.join(d, "out", "o*.log"))):
        for line in lstest.read(f, "rb").decode("utf-8").splitlines():
            if line.strip():
                recs.append(json.loads(line))
    return recs


def wait_delivered(d, n, timeout=30):
    wait_until(lambda: len(delivered(d)) >= n, timeout, what=f"{n} records delivered")
    time.sleep(0.8)    # a duplicate would show up now
    return delivered(d)


def check_exact(recs, sent, what):
    got = [(r.get("path"), r.get("agent")) for r in recs]
    seen = {}
    for g in got:
        seen[g] = seen.get(g, 0) + 1
    dups = [g for g, c in seen.items() if c > 1]
    missing = [s for s in sent if s not in seen]
    extra = [g for g in seen if g not in set(sent)]
    assert not dups and not missing and not extra and len(got) == len(sent), (
        f"{what}: sent {len(sent)}, got {len(got)}, {len(dups)} duplicated (e.g. {dups[:3]}), "
        f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})")


class Sender(threading.Thread):
    """Keeps sending requests with unique paths until stopped."""

    def __init__(self, ngx, prefix, pause=0.002):
        super().__init__(daemon=True)
        self.ngx, self.prefix, self.pause = ngx, prefix, pause
        self.sent = []
        self.stop_ev = threading.Event()
        self.error = None

    def run(self):
        i = 0
        try:
            while not self.stop_ev.is_set():
                p, a = f"/{self.prefix}/{i}?q={i}", f"Mozilla/5.0 (lstest {i})"
                self.ngx.request(p, a)
                self.sent.append((p, a))
                i += 1
                time.sleep(self.pause)
        except Exception as e:  # noqa: BLE001
            self.error = e

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        assert self.error is None, self.error
        return self.sent


def wait_logged(ngx, n, paths=None):
    def count():
        return sum(len(ngx.lines(p)) for p in (paths or [ngx.log]))
    wait_until(lambda: count() >= n, 10, what=f"nginx logged {n} lines")


# ---------------------------------------------------------------------------

def test_nginx_requests_parsed_exactly():
    ngx = Nginx().start()
    d = tmpdir()
    a = Agent(conf(source(ngx.log, d) + file_match(d), d)).start()
    sent = ngx.requests(200, path_fmt="/items/{i}?x=y%20z", agent_fmt="Mozilla/5.0 (X11; test {i})")
    assert ngx.request("/missing/1", "notfound-agent") == 404
    sent.append(("/missing/1", "notfound-agent"))
    wait_logged(ngx, len(sent))
    t_end = time.time()
    recs = wait_delivered(d, len(sent))
    a.stop()
    check_exact(recs, sent, "nginx")
    by_path = {r["path"]: r for r in recs}
    r = by_path["/items/7?x=y%20z"]
    assert r["method"] == "GET" and r["code"] == "200" and r["size"] == "3", r
    assert r["remote"] == "127.0.0.1" and r["host"] == "-" and r["user"] == "-", r
    assert r["agent"] == "Mozilla/5.0 (X11; test 7)" and r["referer"] == "-", r
    assert by_path["/missing/1"]["code"] == "404"
    assert "time" not in r     # consumed as the event time


def test_nginx_time_is_parsed_and_tag_expanded():
    """Event time comes from the log line (2014), not from now; tag * is the path; path_key."""
    d = tmpdir()
    log = os.path.join(d, "logs", "access.log")
    write(log, '192.0.2.1 - - [21/Feb/2014:13:45:07 +0900] "GET /old HTTP/1.1" 200 5 "-" "ua"\n')
    c = conf(f"""
<source>
  @type tail
  path {d}/logs/*.log
  pos_file {d}/tail.pos
  tag nginx.*
  path_key file
  read_from_head true
  <parse>
    @type nginx
  </parse>
</source>
<match nginx.**>
  @type file
  path {d}/out/o
  <format>
    @type out_file
    utc true
  </format>
  <buffer []>
    flush_mode interval
    flush_interval 0.2
  </buffer>
</match>""", d)
    a = Agent(c).start()
    outs = lambda: [l for f in glob.glob(f"{d}/out/o*.log") for l in lstest.read(f).splitlines()]  # noqa: E731
    wait_until(lambda: len(outs()) >= 1, 15, what="one record")
    a.stop()
    t, tag, js = outs()[0].split("\t", 2)
    assert t == "2014-02-21T04:45:07Z", t
    assert tag == "nginx" + log.replace("/", "."), tag
    rec = json.loads(js)
    assert rec["path"] == "/old" and rec["file"] == log, rec


def test_rotation_rename_and_reopen_while_streaming():
    ngx = Nginx().start()
    d = tmpdir()
    a = Agent(conf(source(ngx.log, d) + file_match(d), d)).start()
    s = Sender(ngx, "mv")
    s.start()
    rotated = []
    for k in range(3):
        time.sleep(0.7)
        rotated.append(ngx.rotate_rename(f".{k + 1}"))
    time.sleep(0.5)
    sent = s.finish()
    wait_logged(ngx, len(sent), [ngx.log] + rotated)
    recs = wait_delivered(d, len(sent))
    log = a.log()
    a.stop()
    assert len(sent) > 100, len(sent)
    check_exact(recs, sent, "mv + reopen x3")
    assert log.count("detected rotation") >= 3, lstest.tail_text(log)


def test_rotation_copytruncate():
    """copytruncate: the same inode shrinks; the new content is a new generation read from 0.

    Lines written between the copy and the truncate are lost by any tailer (they
    are in the copy, which is not followed), so the sender pauses around it.
    """
    ngx = Nginx().start()
    d = tmpdir()
    a = Agent(conf(source(ngx.log, d) + file_match(d), d)).start()
    sent = []
    for k in range(3):
        sent += ngx.requests(60 + 40 * k, path_fmt=f"/ct{k}/{{i}}")
        wait_logged(ngx, 60 + 40 * k)
        wait_delivered(d, len(sent))
        ngx.rotate_copytruncate(f".{k + 1}")
    # the last round: the truncated file grows past the old offset before a check sees
    # it shrink (only the first-line fingerprint tells it is new)
    sent += ngx.requests(300, path_fmt="/ct-last/{i}")
    recs = wait_delivered(d, len(sent))
    a.stop()
    check_exact(recs, sent, "copytruncate")


def test_rotation_fingerprint_detects_truncate_and_regrow():
    """Truncate + immediately write more than before, with only the 1 s timer watching."""
    d = tmpdir()
    log = os.path.join(d, "app.log")
    write(log, "".join(f"first-gen {i}\n" for i in range(10)))
    c = conf(source(log, d, parse="@type none", extra="enable_stat_watcher false") +
             file_match(d), d)
    a = Agent(c).start()
    wait_delivered(d, 10)
    with open(log, "r+") as f:
        f.truncate(0)
        f.write("".join(f"second-generation line {i}\n" for i in range(20)))
    recs = wait_delivered(d, 30)
    a.stop()
    msgs = sorted(r["message"] for r in recs)
    want = sorted([f"first-gen {i}" for i in range(10)] +
                  [f"second-generation line {i}" for i in range(20)])
    assert msgs == want, (len(msgs), msgs[:5])


def test_rotation_delete_and_reopen():
    ngx = Nginx().start()
    d = tmpdir()
    a = Agent(conf(source(ngx.log, d) + file_match(d), d)).start()
    s = Sender(ngx, "del")
    s.start()
    for _ in range(2):
        time.sleep(0.8)
        ngx.rotate_delete()
    time.sleep(0.5)
    sent = s.finish()
    recs = wait_delivered(d, len(sent))
    a.stop()
    check_exact(recs, sent, "delete + reopen x2")


def test_glob_gains_files_and_file_appears_later():
    """A glob picks up new files at refresh (read from the head); a literal path that does
    not exist yet is followed once it appears."""
    d = tmpdir()
    os.makedirs(f"{d}/logs")
    write(f"{d}/logs/a.log", "a0\n")
    c = conf(f"""
<source>
  @type tail
  path {d}/logs/*.log,{d}/later/x.txt
  exclude_path ["{d}/logs/skip*.log"]
  pos_file {d}/tail.pos
  tag t.*
  refresh_interval 1
  <parse>
    @type none
  </parse>
</source>""" + file_match(d), d)
    a = Agent(c).start()
    a.wait_log("following tail of '.*a.log'")
    with open(f"{d}/logs/a.log", "a") as f:
        f.write("a1\n")                        # read_from_head false: a0 was before start
    write(f"{d}/logs/b.log", "b0\nb1\n")       # found after start: read from the head
    write(f"{d}/logs/skip1.log", "nope\n")
    time.sleep(0.3)
    write(f"{d}/later/x.txt", "x0\n")
    recs = wait_delivered(d, 4)
    a.stop()
    assert sorted(r["message"] for r in recs) == ["a1", "b0", "b1", "x0"], recs


def test_pos_file_is_fluentd_format():
    d = tmpdir()
    log1, log2 = os.path.join(d, "one.log"), os.path.join(d, "two.log")
    write(log1, "".join(f"l{i}\n" for i in range(50)))
    write(log2, "partial last line without newline")
    a = Agent(conf(source(f"{log1},{log2}", d, parse="@type none") + file_match(d), d)).start()
    wait_delivered(d, 50)
    a.stop()
    raw = lstest.read(f"{d}/tail.pos")
    for line in raw.splitlines():
        assert re.fullmatch(r"[^\t]+\t[0-9a-f]{16}\t[0-9a-f]{16}", line), repr(line)
    pos = read_pos_file(f"{d}/tail.pos")
    assert pos[log1] == (os.path.getsize(log1), os.stat(log1).st_ino), pos
    # a partial line is not consumed: its entry stays at 0
    assert pos[log2] == (0, os.stat(log2).st_ino), pos


def test_td_agent_pos_file_is_adopted():
    """Start mid-file from a pos_file td-agent wrote (same format)."""
    d = tmpdir()
    log = os.path.join(d, "access.log")
    lines = [f"line {i}" for i in range(10)]
    write(log, "".join(l + "\n" for l in lines))
    off = sum(len(l) + 1 for l in lines[:4])
    ino = os.stat(log).st_ino
    write(f"{d}/tail.pos", f"/var/log/other.log\t{0x10:016x}\t{0x99:016x}\n"
                           f"{log}\t{off:016x}\t{ino:016x}\n")
    a = Agent(conf(source(log, d, parse="@type none") + file_match(d), d)).start()
    recs = wait_delivered(d, 6)
    a.stop()
    assert [r["message"] for r in recs] == lines[4:], recs
    pos = read_pos_file(f"{d}/tail.pos")
    assert pos[log] == (os.path.getsize(log), ino)
    assert "/var/log/other.log" not in pos    # not expanded any more: compacted away


def test_partial_line_waits_for_newline():
    d = tmpdir()
    log = os.path.join(d, "p.log")
    write(log, "")
    a = Agent(conf(source(log, d, parse="@type none") + file_match(d), d)).start()
    a.wait_log("following tail of")
    with open(log, "a") as f:
        f.write("complete\nhalf")
    wait_delivered(d, 1)
    time.sleep(1.5)
    assert [r["message"] for r in delivered(d)] == ["complete"]
    assert read_pos_file(f"{d}/tail.pos")[log][0] == len("complete\n")
    with open(log, "a") as f:
        f.write("-and-rest\n")
    recs = wait_delivered(d, 2)
    a.stop()
    assert [r["message"] for r in recs] == ["complete", "half-and-rest"], recs


def test_line_bytes_crlf_nul_invalid_utf8_and_max_line_size():
    d = tmpdir()
    log = os.path.join(d, "b.log")
    data = (b"crlf line\r\n" + b"nul\x00inside\n" + b"bad \xff\xfe utf8\n" +
            b"L" * 5000 + b"\n" + b"after long\n" + b"\xe6\x97\xa5\xe6\x9c\xac\n")
    write(log, data, "wb")
    a = Agent(conf(source(log, d, parse="@type none", extra="max_line_size 1k") + file_match(d),
                   d)).start()
    wait_delivered(d, 5)
    log_text = a.log()
    a.stop()
    # every output line is valid JSON (delivered() would have raised otherwise)
    msgs = [r["message"] for r in delivered(d)]
    assert msgs[0] == "crlf line" and msgs[1] == "nul\x00inside", msgs
    assert msgs[2].startswith("bad ") and msgs[2].endswith(" utf8"), msgs
    assert msgs[3:] == ["after long", "\u65e5\u672c"], msgs
    assert "longer than max_line_size" in log_text, lstest.tail_text(log_text)


def test_oneshot_reads_to_end_and_exits():
    d = tmpdir()
    log = os.path.join(d, "o.log")
    write(log, "".join(f"o{i}\n" for i in range(1000)) + "unfinished")
    c = conf(source(log, d, parse="@type none") + file_match(d), d)
    p = run(["-c", c, "--oneshot"], timeout=60)
    assert p.returncode == 0, lstest.tail_text(p.stderr)
    msgs = [r["message"] for r in delivered(d)]
    assert msgs == [f"o{i}" for i in range(1000)], (len(msgs), msgs[-3:])
    assert read_pos_file(f"{d}/tail.pos")[log][0] == os.path.getsize(log) - len("unfinished")
    # a second run has nothing new: exits at once, delivers nothing more
    p = run(["-c", c, "--oneshot"], timeout=60)
    assert p.returncode == 0, lstest.tail_text(p.stderr)
    assert len(delivered(d)) == 1000


def test_v012_flat_format_and_unmatched_lines():
    d = tmpdir()
    log = os.path.join(d, "f.log")
    write(log, "k=1 v=a\nnot matching\nk=2 v=b\n")
    c = conf(f"""
<source>
  type tail
  path {log}
  pos_file {d}/tail.pos
  tag flat
  read_from_head true
  format /^k=(?<k>\\d+) v=(?<v>\\w+)$/
  emit_unmatched_lines true
</source>""" + file_match(d), d)
    a = Agent(c).start()
    recs = wait_delivered(d, 3)
    log_text = a.log()
    a.stop()
    assert recs == [{"k": "1", "v": "a"}, {"unmatched_line": "not matching"},
                    {"k": "2", "v": "b"}], recs
    assert "pattern not matched" in log_text
    assert "not used" not in log_text, log_text


def test_multiline_firstline():
    d = tmpdir()
    log = os.path.join(d, "m.log")
    write(log, "2024-01-01 first\n  cont a\n  cont b\n2024-01-02 second\n")
    c = conf(source(log, d, parse="""@type multiline
    format_firstline /^\\d{4}-/
    format1 /^(?<day>\\S+) (?<msg>.*)$/""", extra="multiline_flush_interval 1s") +
             file_match(d), d)
    a = Agent(c).start()
    recs = wait_delivered(d, 2)
    a.stop()
    assert recs[0]["day"] == "2024-01-01" and recs[0]["msg"] == "first\n  cont a\n  cont b", recs
    assert recs[1]["day"] == "2024-01-02" and recs[1]["msg"] == "second", recs
    # the flushed record's end is the file's end: nothing is read twice on restart
    assert read_pos_file(f"{d}/tail.pos")[log][0] == os.path.getsize(log)


def test_kill9_during_nginx_stream_with_rotation_exactly_once():
    """kill -9 logship at random moments while nginx logs and the log is rotated (mv +
    reopen, rotated file not matched by path): restart, repeat; every request exactly once."""
    rounds = 12 if lstest.LONG else 4
    seed = int(os.environ.get("SEED", time.time()))
    rnd = random.Random(seed)
    ngx = Nginx().start()
    d = tmpdir()
    a = Agent(conf(source(ngx.log, d, extra="rotate_wait 1") + file_match(d), d))
    s = Sender(ngx, "k9", pause=0.001)
    s.start()
    rotations = []
    try:
        for k in range(rounds):
            a.start()
            time.sleep(rnd.uniform(0.1, 1.2))
            if k % 2 == 1:
                rotations.append(ngx.rotate_rename(f".{k}"))
                time.sleep(rnd.uniform(0.0, 0.3))
            a.kill9()
            a.out.close()
            a.err.close()
            if k % 3 == 2:
                # rotated while logship is down
                rotations.append(ngx.rotate_rename(f".down{k}"))
    finally:
        sent = s.finish()
    wait_logged(ngx, len(sent), [ngx.log] + rotations)
    a.start()
    try:
        wait_until(lambda: len(delivered(d)) >= len(sent), 30, what=f"{len(sent)} delivered")
    except AssertionError:
        pass    # check_exact names what is missing
    time.sleep(0.8)
    a.stop()
    recs = delivered(d)
    if os.environ.get("KEEP_TMP"):
        print("    kept", d, ngx.dir, flush=True)
    check_exact(recs, sent, f"seed {seed}: {rounds} kill -9 rounds, {len(rotations)} rotations")
    print(f"    nginx crash loop: seed {seed}, {rounds} kills, {len(rotations)} rotations, "
          f"{len(sent)} requests, exactly once", flush=True)


def test_backpressure_block_small_buffer_no_loss():
    """overflow_action block with a tiny total_limit_size and a slow output: tail pauses and
    resumes from the file; nothing lost or repeated."""
    d = tmpdir()
    log = os.path.join(d, "bp.log")
    n = 20000
    write(log, "".join(f"bp {i} {'y' * 60}\n" for i in range(n)))
    c = conf(source(log, d, parse="@type none") + f"""
<match **>
  @type file
  path {d}/out/o
  <format>
    @type json
  </format>
  <buffer []>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.1
    chunk_limit_size 64k
    total_limit_size 256k
    overflow_action block
    flush_at_shutdown true
  </buffer>
</match>""", d)
    a = Agent(c).start()
    recs = wait_delivered(d, n, timeout=90)
    a.stop()
    got = [int(r["message"].split()[1]) for r in recs]
    assert len(got) == n and sorted(got) == list(range(n)), (len(got), len(set(got)))


def test_kill9_while_a_rotated_file_drains_reads_nothing_twice():
    """The log is renamed and its successor does not exist yet (an application that creates
    it on its first line), so the path's pos_file entry still names the old file while the
    old file drains under its new name and lines written to it late are read, delivered and
    their chunks deleted. kill -9 then: the restart must resume the old file where the drain
    was, not where the rotation was seen (the crash loop's duplicates). Three restarts: no
    successor yet, a successor there, and the drain already over (its entry unwatched)."""
    for case in ("no successor", "successor", "drain over"):
        d = tmpdir()
        log = os.path.join(d, "access.log")
        write(log, "".join(f"l {i}\n" for i in range(20)))
        wait = "1" if case == "drain over" else "30"
        src = source(log, d, parse="@type none", extra=f"rotate_wait {wait}")
        a = Agent(conf(src + file_match(d), d))
        a.start()
        wait_delivered(d, 20)
        os.rename(log, log + ".1")
        a.wait_log(r"detected rotation|moved or removed")
        write(log + ".1", "".join(f"l {i}\n" for i in range(20, 25)), "a")   # written late
        wait_delivered(d, 25)
        if case == "drain over":
            a.wait_log(r"stop following")
        a.kill9()
        a.out.close()
        a.err.close()
        if case == "successor":
            write(log, "".join(f"l {i}\n" for i in range(25, 30)))
        a.start()
        time.sleep(1.5)
        if case != "successor":
            write(log, "".join(f"l {i}\n" for i in range(25, 30)))
        recs = wait_delivered(d, 30)
        a.stop()
        got = sorted(int(r["message"].split()[1]) for r in recs)
        assert got == list(range(30)), (case, got)


def test_rotated_file_written_after_its_drain_or_while_down_is_read_once():
    """Three ways a renamed log gets lines after logship stopped reading it, each read once:
    (a) its drain is over (rotate_wait passed, no successor yet) and the writer adds a line
        before creating the successor: found again when the successor appears;
    (b) a restart drains it while the path has no successor, the successor appears, kill -9,
        a line is added while down: read at the next restart (the drain's own pos_file entry
        must survive the successor's);
    (c) the successor is there, kill -9, the writer adds a line to the renamed file while
        down: that line is read, and the successor is not taken for a truncated copy and
        read again from its head."""
    def lines(a, b):
        return "".join(f"l {i}\n" for i in range(a, b))

    def numbers(d):
        return sorted(int(r["message"].split()[1]) for r in delivered(d))

    def tailing(rotate_wait):
        """A tail of l 0..9 into out_file, those delivered: (dir, log path, agent)."""
        d = tmpdir()
        log = os.path.join(d, "access.log")
        write(log, lines(0, 10))
        a = Agent(conf(source(log, d, parse="@type none", extra=f"rotate_wait {rotate_wait}")
                       + file_match(d), d))
        a.start()
        wait_delivered(d, 10)
        return d, log, a

    def kill9(a):
        a.kill9()
        a.out.close()
        a.err.close()

    # (a)
    d, log, a = tailing(1)
    os.rename(log, log + ".1")
    a.wait_log(r"stop following")
    write(log + ".1", lines(10, 12), "a")
    write(log, lines(12, 15))
    wait_delivered(d, 15)
    a.stop()
    assert numbers(d) == list(range(15)), ("a", numbers(d))

    # (b)
    d, log, a = tailing(30)
    kill9(a)
    os.rename(log, log + ".1")
    write(log + ".1", lines(10, 12), "a")
    a.start()                                   # drains .1; the path has no file yet
    wait_delivered(d, 12)
    write(log, lines(12, 15))                   # the successor, found by the 1 s refresh
    wait_delivered(d, 15)
    kill9(a)
    write(log + ".1", lines(15, 17), "a")       # the old file gets more while down
    a.start()
    wait_delivered(d, 17)
    a.stop()
    assert numbers(d) == list(range(17)), ("b", numbers(d))

    # (c)
    d, log, a = tailing(30)
    os.rename(log, log + ".1")
    write(log, lines(10, 15))
    wait_delivered(d, 15)
    time.sleep(1)                               # the pos_file is older than what follows
    kill9(a)
    write(log + ".1", lines(15, 16), "a")
    a.start()
    wait_delivered(d, 16)
    a.stop()
    assert numbers(d) == list(range(16)), ("c", numbers(d))


def test_second_rotation_during_a_drain_keeps_the_first_files_position():
    """Two rotations within rotate_wait: the first one's drain (access.log.1) is renamed to
    access.log.2 while it drains, and the second one's file takes the name access.log.1.
    Both had a pos_file line named access.log.1, and a start keeps only the last line of a
    name (fluentd's rule), so after a kill -9 the first file's lines written late (a writer
    still holding it open) were never read. The older entry now moves to its file's name."""
    def lines(a, b):
        return "".join(f"l {i}\n" for i in range(a, b))

    d = tmpdir()
    log = os.path.join(d, "access.log")
    write(log, lines(0, 10))
    a = Agent(conf(source(log, d, parse="@type none", extra="rotate_wait 60") + file_match(d),
                   d))
    a.start()
    wait_delivered(d, 10)
    os.rename(log, log + ".1")
    write(log, lines(10, 15))
    wait_delivered(d, 15)
    os.rename(log + ".1", log + ".2")
    os.rename(log, log + ".1")
    write(log, lines(15, 20))
    wait_delivered(d, 20)
    a.kill9()
    a.out.close()
    a.err.close()
    names = [l.split("\t")[0] for l in lstest.read(os.path.join(d, "tail.pos")).splitlines()]
    assert len(names) == len(set(names)), names
    write(log + ".2", lines(20, 22), "a")        # the first file, written late while down
    a.start()
    recs = wait_delivered(d, 22)
    a.stop()
    got = sorted(int(r["message"].split()[1]) for r in recs)
    assert got == list(range(22)), got


def test_two_rotations_while_down_every_generation_read():
    """logship is down across two rotations (logrotate numbering: access.log -> .1, then .1 ->
    .2 and access.log -> .1): the pos_file names only the oldest generation, yet the middle
    one, which no pos_file entry ever named, is read too; older rotated files and a copy of
    the log are not."""
    d = tmpdir()
    log = os.path.join(d, "access.log")
    write(log + ".3", "".join(f"old {i}\n" for i in range(5)))     # rotated before: not read
    birth = subprocess.run(["stat", "-c", "%W", log + ".3"], capture_output=True, text=True)
    if birth.stdout.strip() in ("", "0", "-"):
        raise lstest.Skip("this file system records no birth time (statx STATX_BTIME)")
    time.sleep(0.05)
    write(log, "".join(f"l {i}\n" for i in range(10)))
    a = Agent(conf(source(log, d, parse="@type none", extra="rotate_wait 1") + file_match(d), d))
    a.start()
    wait_delivered(d, 10)
    a.stop()
    write(log, "".join(f"l {i}\n" for i in range(10, 20)), "a")   # written while down
    write(log + ".bak", lstest.read(log))                         # a copy of A: not read
    os.rename(log, log + ".1")                                    # generation A
    time.sleep(0.05)
    write(log, "".join(f"l {i}\n" for i in range(20, 30)))        # generation B
    time.sleep(0.05)
    os.rename(log + ".1", log + ".2")
    os.rename(log, log + ".1")
    time.sleep(0.05)
    write(log, "".join(f"l {i}\n" for i in range(30, 40)))        # generation C
    a.start()
    recs = wait_delivered(d, 40)
    a.stop()
    got = sorted(int(r["message"].split()[1]) for r in recs if r["message"].startswith("l "))
    old = [r for r in recs if r["message"].startswith("old ")]
    assert got == list(range(40)) and not old, (got, old)
    # a restart reads nothing again
    a.start()
    time.sleep(2)
    a.stop()
    assert len(delivered(d)) == 40


def test_two_rotations_before_logship_looks_every_generation_read():
    """logship running but not looking (SIGSTOP: a stalled host) across two rotations: when it
    resumes it sees the path on its third generation while it still follows the first; the
    middle one is found (the running case of the generation search) and read once."""
    d = tmpdir()
    log = os.path.join(d, "access.log")
    write(log, "".join(f"l {i}\n" for i in range(10)))
    birth = subprocess.run(["stat", "-c", "%W", log], capture_output=True, text=True)
    if birth.stdout.strip() in ("", "0", "-"):
        raise lstest.Skip("this file system records no birth time (statx STATX_BTIME)")
    a = Agent(conf(source(log, d, parse="@type none", extra="rotate_wait 1") + file_match(d), d))
    a.start()
    wait_delivered(d, 10)
    a.signal(signal.SIGSTOP)
    try:
        write(log, "".join(f"l {i}\n" for i in range(10, 20)), "a")
        os.rename(log, log + ".1")                                # A
        time.sleep(0.05)
        write(log, "".join(f"l {i}\n" for i in range(20, 30)))    # B
        time.sleep(0.05)
        os.rename(log + ".1", log + ".2")
        os.rename(log, log + ".1")
        time.sleep(0.05)
        write(log, "".join(f"l {i}\n" for i in range(30, 40)))    # C
    finally:
        a.signal(signal.SIGCONT)
    recs = wait_delivered(d, 40)
    time.sleep(1.5)
    a.stop()
    got = sorted(int(r["message"].split()[1]) for r in delivered(d))
    assert got == list(range(40)), got
    assert "is a generation of" in a.log(), a.log()[-2000:]
