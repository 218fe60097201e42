"""in_syslog, in_tcp and in_udp with real peers on 127.0.0.1: util-linux `logger`, an
unprivileged `rsyslogd` forwarding with omfwd (UDP, TCP octet-counted, RFC 5424), and Python
sockets. Records end in out_file (JSON lines with the tag and the float time injected) and are
compared with what fluentd produces for the same bytes (tag <tag>.<facility>.<severity>, time,
host, ident, pid, msgid, extradata, message; pri removed).
"""
import calendar, glob, json, os, resource, shutil, socket, subprocess, time
import lstest
from lstest import Agent, conf, free_port, tmpdir, wait_until, write

ENV = dict(os.environ, TZ="UTC")
YEAR = time.gmtime().tm_year


def start(d, sources, extra=""):
    out = os.path.join(d, "res", "out")
    c = conf(f"""
{sources}
{extra}
<match **>
  @type file
  path {out}
  append true
  <format>
    @type json
  </format>
  <inject>
    tag_key tag
    time_key time
    time_type float
  </inject>
  <buffer>
    flush_mode immediate
  </buffer>
</match>
""", d)
    a = Agent(c, env=ENV).start()
    a.wait_log("logship started")
    return a


def records(d):
    recs = []
    for p in sorted(glob.glob(os.path.join(d, "res", "out*"))):
        if os.path.isdir(p):
            continue
        with open(p, "rb") as f:
            for line in f:
                recs.append(json.loads(line))
    return recs


def clear(d):
    for p in glob.glob(os.path.join(d, "res", "out*")):
        if not os.path.isdir(p):
            os.unlink(p)


def wait_records(d, n, what="records"):
    return wait_until(lambda: len(records(d)) >= n and records(d), what=f"{n} {what}")


def send_udp(port, data):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(data, ("127.0.0.1", port))
    s.close()


def send_tcp(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.close()


def logger(port, *args):
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port)] + list(args), check=True,
                   env=ENV, timeout=30)


def need(tool):
    if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
        raise lstest.Skip(f"{tool} is not installed (packaging/install-deps.sh test)")


def syslog_src(tag, port, transport="udp", extra=""):
    return f"""<source>
  @type syslog
  tag {tag}
  bind 127.0.0.1
  port {port}
  <transport {transport}>
  </transport>
  {extra}
  <parse>
    message_format auto
  </parse>
</source>
"""


# Exact fluentd records for fixed lines (fluentd's regexp engine, TZ=UTC).
EXACT = [
    (b"<6>Feb 28 12:00:00 192.168.0.1 fluentd[11111]: [error] Syslog test",
     "sys.kern.info", calendar.timegm((YEAR, 2, 28, 12, 0, 0)),
     {"host": "192.168.0.1", "ident": "fluentd", "pid": "11111", "message": "[error] Syslog test"}),
    (b"<134>Mar  5 01:02:03 web1 nginx: GET / 200\n",
     "sys.local0.info", calendar.timegm((YEAR, 3, 5, 1, 2, 3)),
     {"host": "web1", "ident": "nginx", "message": "GET / 200"}),
    (b'<16>1 2013-02-28T12:00:00.003Z 192.168.0.1 fluentd 11111 ID24224 [exampleSDID@20224 iut="3"] Hi',
     "sys.mail.emerg", 1362052800.003,
     {"host": "192.168.0.1", "ident": "fluentd", "pid": "11111", "msgid": "ID24224",
      "extradata": '[exampleSDID@20224 iut="3"]', "message": "Hi"}),
    (b"<165>1 2003-10-11T22:14:15+02:00 mymachine.example.com evntslog - ID47 - An app event\r\n",
     "sys.local4.notice", 1065903255,
     {"host": "mymachine.example.com", "ident": "evntslog", "pid": "-", "msgid": "ID47",
      "extradata": "-", "message": "An app event"}),
]


def check_exact(got, expect):
    # out_file slices by time, so the files do not keep the arrival order: match by message
    assert len(got) == len(expect), (got, expect)
    by_msg = {r["message"]: r for r in got}
    for _, tag, t, fields in expect:
        r = dict(by_msg[fields["message"]])
        assert r.pop("tag") == tag, r
        assert abs(r.pop("time") - t) < 1e-4, (r, t)
        assert r == fields, (r, fields)


def test_syslog_exact_records_udp_tcp_octet():
    d = tmpdir()
    pu, pt, po = free_port(), free_port(), free_port()
    a = start(d, syslog_src("sys", pu) + syslog_src("sys", pt, "tcp") +
              syslog_src("sys", po, "tcp", "frame_type octet_count"))
    for line, *_ in EXACT:
        send_udp(pu, line)
    wait_records(d, len(EXACT))
    check_exact(records(d), EXACT)
    clear(d)
    # TCP: all in one connection, split across writes
    s = socket.create_connection(("127.0.0.1", pt))
    blob = b"".join(l.rstrip(b"\r\n") + b"\n" for l, *_ in EXACT)
    for i in range(0, len(blob), 7):
        s.sendall(blob[i:i + 7])
        time.sleep(0.001)
    s.close()
    wait_records(d, len(EXACT))
    check_exact(records(d), EXACT)
    clear(d)
    # octet counting: frames may hold newlines; a stray LF between frames is tolerated
    blob = b"".join(b"%d %s\n" % (len(l), l) for l, *_ in EXACT)
    send_tcp(po, blob)
    wait_records(d, len(EXACT))
    check_exact(records(d), EXACT)
    assert a.stop() == 0


def test_syslog_logger_rfc3164_rfc5424():
    need("logger")
    d = tmpdir()
    pu, pt, po = free_port(), free_port(), free_port()
    keys = "facility_key fac\n  severity_key sev\n  source_address_key addr"
    a = start(d, syslog_src("sys", pu, "udp", keys) + syslog_src("tcp", pt, "tcp", keys) +
              syslog_src("oct", po, "tcp", keys + "\n  frame_type octet_count"))
    t0 = int(time.time())
    sends = [
        (pu, ["-d", "--rfc3164", "-t", "app", "-i", "-p", "local0.info", "m1 udp 3164"], "sys"),
        (pu, ["-d", "--rfc5424", "-t", "app", "--msgid", "ID1", "-p", "mail.err", "m2 udp 5424"], "sys"),
        (pt, ["-T", "--rfc3164", "-t", "app", "-p", "daemon.warning", "m3 tcp 3164"], "tcp"),
        (pt, ["-T", "--rfc5424", "-t", "app", "-i", "-p", "auth.crit", "m4 tcp 5424"], "tcp"),
        (po, ["-T", "--octet-count", "--rfc5424", "-t", "app", "-p", "local7.debug",
              "m5 octet 5424"], "oct"),
        (po, ["-T", "--octet-count", "--rfc3164", "-t", "app", "-p", "local1.emerg",
              "m6 octet 3164"], "oct"),
    ]
    for port, args, _ in sends:
        logger(port, *args)
    recs = wait_records(d, len(sends))
    t1 = time.time()
    by_msg = {r["message"]: r for r in recs}
    host = socket.gethostname().split(".")[0]
    exp_tag = {"m1": "local0.info", "m2": "mail.err", "m3": "daemon.warn", "m4": "auth.crit",
               "m5": "local7.debug", "m6": "local1.emerg"}
    for port, args, tag in sends:
        msg = args[-1]
        r = by_msg[msg]
        k = msg.split()[0]
        assert r["tag"] == f"{tag}.{exp_tag[k]}", r
        fac, sev = exp_tag[k].split(".")
        assert (r["fac"], r["sev"], r["addr"]) == (fac, sev, "127.0.0.1"), r
        assert r["ident"] == "app" and r["host"].split(".")[0] == host, r
        assert "pri" not in r, r
        assert t0 - 1 <= r["time"] <= t1, (r, t0, t1)
        if "5424" in msg:
            assert r["extradata"].startswith("[timeQuality"), r
            assert r["pid"] == ("-" if "-i" not in args else r["pid"]) and r["msgid"] in ("-", "ID1"), r
            # RFC 5424 times keep their fraction (logger sends microseconds)
        if "-i" in args:
            assert r["pid"].isdigit(), r
    assert by_msg["m2 udp 5424"]["msgid"] == "ID1"
    assert "pid" not in by_msg["m3 tcp 3164"]
    assert a.stop() == 0


def test_syslog_rsyslog_omfwd_udp_tcp():
    need("rsyslogd")
    need("logger")
    d = tmpdir()
    pu, pt, po, pin = free_port(), free_port(), free_port(), free_port()
    a = start(d, syslog_src("u", pu) + syslog_src("t", pt, "tcp") +
              syslog_src("o", po, "tcp", "frame_type octet_count"))
    rs = os.path.join(d, "rsyslog")
    os.makedirs(rs)
    rconf = write(os.path.join(rs, "rsyslog.conf"), f"""
global(workDirectory="{rs}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{pin}")
template(name="plain" type="string" string="<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag%%msg%")
action(type="omfwd" target="127.0.0.1" port="{pu}" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{pt}" protocol="tcp" template="RSYSLOG_TraditionalForwardFormat")
action(type="omfwd" target="127.0.0.1" port="{po}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
""")
    rlog = open(os.path.join(rs, "rsyslogd.log"), "wb")
    p = subprocess.Popen(["rsyslogd", "-n", "-f", rconf, "-i", os.path.join(rs, "pid")],
                         stdout=rlog, stderr=rlog, env=ENV)
    lstest.on_cleanup(lambda: (p.poll() is None and p.kill()))
    try:
        # rsyslog listens once it is up; resend the probe until something arrives
        wait_until(lambda: logger(pin, "-d", "--rfc3164", "-t", "probe", "up") or
                   len(records(d)) >= 3, timeout=30, interval=0.5, what="rsyslog forwarding")
        n0 = len(records(d))
        for i in range(20):
            logger(pin, "-d", "--rfc3164", "-t", "rsapp", "-p", "local3.warning", f"via rsyslog {i}")
        recs = wait_until(lambda: [r for r in records(d) if r.get("ident") == "rsapp"]
                          if len([r for r in records(d) if r.get("ident") == "rsapp"]) >= 60
                          else None, what="60 forwarded records")
    finally:
        p.terminate()
        p.wait(10)
        rlog.close()
    assert n0 >= 3
    for prefix in ("u", "t", "o"):
        got = sorted((r for r in recs if r["tag"].startswith(prefix + ".")),
                     key=lambda r: int(r["message"].split()[-1]))
        assert [r["message"].strip() for r in got] == [f"via rsyslog {i}" for i in range(20)], got
        for r in got:
            assert r["tag"] == f"{prefix}.local3.warn", r
            assert r["ident"] == "rsapp" and "pri" not in r, r
            assert not r["message"].endswith("\n"), r     # fluentd chomps the message
            if prefix != "t":
                assert r["extradata"] == "-" and r["msgid"] == "-", r
    assert a.stop() == 0


def test_syslog_unmatched_and_invalid():
    d = tmpdir()
    pu, pt = free_port(), free_port()
    p5 = free_port()
    a = start(d, syslog_src("sys", pu, "udp", "emit_unmatched_lines true") +
              syslog_src("nosys", pt, "tcp", "message_length_limit 100") +
              syslog_src("r5", p5).replace("message_format auto", "message_format rfc5424"))
    # empty datagrams (an rfc5424 parser once read a byte of an empty line)
    send_udp(p5, b"")
    send_udp(p5, b"\n")
    send_udp(pu, b"garbage without pri")
    send_udp(pu, b"<999>Feb 28 12:00:00 h i: pri too big")
    send_udp(pu, b"<13>Feb 28 12:00:00 h i: caf\xc3\xa9 \xff\xfe bytes")
    recs = wait_records(d, 3)
    um = sorted(r["unmatched_line"] for r in recs if r["tag"] == "sys.unmatched")
    assert um == ["<999>Feb 28 12:00:00 h i: pri too big", "garbage without pri"], recs
    ok = [r for r in recs if r["tag"] == "sys.user.notice"]
    assert len(ok) == 1 and ok[0]["message"].startswith("caf\u00e9 "), recs
    # TCP: an over-long line is dropped, the lines around it are kept; garbage is logged
    send_tcp(pt, b"<13>Feb 28 12:00:00 h i: before\n" + b"x" * 5000 + b"\nnot syslog\n"
             b"<13>Feb 28 12:00:00 h i: after\n")
    recs = wait_records(d, 5)
    assert sorted(r["message"] for r in recs if r["tag"].startswith("nosys.")) == ["after", "before"], recs
    a.wait_log(r"longer than message_length_limit 100; dropped")
    a.wait_log(r"failed to parse message: \"not syslog\"")
    assert a.alive()
    assert a.stop() == 0


def test_tcp_udp_inputs_parse_and_peer_keys():
    d = tmpdir()
    pt, pu, pd = free_port(), free_port(), free_port()
    a = start(d, f"""
<source>
  @type tcp
  tag t.json
  bind 127.0.0.1
  port {pt}
  source_address_key addr
  source_hostname_key host
  message_length_limit 64
  <parse>
    @type json
  </parse>
</source>
<source>
  @type tcp
  tag t.crlf
  bind 127.0.0.1
  port {pd}
  delimiter "\\r\\n"
  <parse>
    @type none
  </parse>
</source>
<source>
  @type udp
  tag u.json
  bind 127.0.0.1
  port {pu}
  source_address_key addr
  message_length_limit 32
  <parse>
    @type json
  </parse>
</source>""")
    send_tcp(pt, b'{"a":1}\n{"a":2}\nnot json\n{"a":"' + b"y" * 100 + b'"}\n{"a":3}\n')
    send_tcp(pd, b"one\r\ntwo\nstill two\r\n")
    send_udp(pu, b'{"b":1}\n')
    send_udp(pu, b'{"b":"' + b"z" * 100 + b'"}')
    send_udp(pu, b'{"b":2}')
    recs = wait_records(d, 7)
    js = sorted((r for r in recs if r["tag"] == "t.json"), key=lambda r: r["a"])
    assert [r["a"] for r in js] == [1, 2, 3], recs
    assert all(r["addr"] == "127.0.0.1" and r["host"] for r in js), js
    assert [r["message"] for r in recs if r["tag"] == "t.crlf"] == ["one", "two\nstill two"]
    us = [r for r in recs if r["tag"] == "u.json"]
    assert [r["b"] for r in us] == [1, 2] and us[0]["addr"] == "127.0.0.1", us
    a.wait_log(r"cut to that length")
    a.wait_log(r"longer than message_length_limit 64; dropped")
    assert a.stop() == 0


def test_tcp_parse_section_required_and_tls_refused():
    d = tmpdir()
    c = conf("<source>\n  @type tcp\n  tag x\n</source>\n<match **>\n  @type null\n</match>\n", d)
    p = lstest.run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "logship.conf:1: <parse> section is required" in p.stderr, p.stderr
    c = conf("<source>\n  @type syslog\n  tag x\n  <transport tls>\n  </transport>\n</source>\n"
             "<match **>\n  @type null\n</match>\n", d)
    p = lstest.run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "logship.conf:4: <transport tls>" in p.stderr, p.stderr


def test_tcp_many_connections_and_slow_clients():
    d = tmpdir()
    pt = free_port()
    a = start(d, f"""<source>
  @type syslog
  tag s
  bind 127.0.0.1
  port {pt}
  max_connections 50
  idle_timeout 2
  <transport tcp>
  </transport>
</source>""")
    socks = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 12000), hard))
    try:
        for i in range(10000):
            try:
                socks.append(socket.create_connection(("127.0.0.1", pt), timeout=5))
            except OSError:
                break
        a.wait_log(r"connection\(s\) refused: max_connections 50 reached")
        # the refused ones were closed by logship
        closed = 0
        for s in socks[60:200]:
            s.settimeout(5)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == 140, closed
        assert len(socks) >= 1000, len(socks)
        with open(f"/proc/{a.p.pid}/status") as f:
            hwm = int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
        # (a sanitizer build's allocator keeps freed memory in quarantine)
        assert os.environ.get("SANITIZE") or hwm < 150 * 1024, f"peak RSS {hwm} kB after {len(socks)} connections"
        for s in socks:
            s.close()
        socks = []
        # a slow client (a byte at a time) does not hold up a fast one
        slow = socket.create_connection(("127.0.0.1", pt))
        line = b"<13>Feb 28 12:00:00 h slow: one byte at a time\n"
        slow.sendall(line[:5])
        wait_until(lambda: (send_tcp(pt, b"<13>Feb 28 12:00:00 h fast: quick\n") or True)
                   and any(r.get("ident") == "fast" for r in records(d)), what="fast record")
        for b in line[5:]:
            slow.sendall(bytes([b]))
            time.sleep(0.005)
        wait_until(lambda: any(r.get("ident") == "slow" for r in records(d)), what="slow record")
        # an idle connection is closed after idle_timeout
        slow.settimeout(10)
        assert slow.recv(1) == b""
        slow.close()
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert a.alive()
    assert a.stop() == 0


def fault_agent(d, kind, port, chunk, total, buf_type="memory"):
    """A tcp/udp json input into an output that fails for its first 3-4 s, with a small
    blocking buffer: back-pressure. Returns the running agent; delivered(d) reads the output."""
    c = conf(f"""<source>
  @type {kind}
  tag bp
  bind 127.0.0.1
  port {port}
  <parse>
    @type json
  </parse>
</source>
<match bp>
  @type fault
  fail_for {4 if kind == "tcp" else 3}
  path {d}/delivered
  <format>
    @type json
  </format>
  <buffer>
    @type {buf_type}
    {f"path {d}/buf" if buf_type == "file" else ""}
    chunk_limit_size {chunk}
    total_limit_size {total}
    overflow_action block
    flush_mode immediate
    retry_type periodic
    retry_wait 0.3
  </buffer>
</match>""", d)
    a = Agent(c, ["-v"], env=ENV).start()
    a.wait_log("logship started")
    return a


def delivered(d):
    p = os.path.join(d, "delivered")
    if not os.path.exists(p):
        return []
    with open(p, "rb") as f:
        return [json.loads(l)["seq"] for l in f]


def test_tcp_backpressure_stops_reading_and_loses_nothing():
    """A full buffer (overflow_action block) stops reading the socket: the client is made to
    wait (TCP flow control), and once the output recovers every record arrives once."""
    d = tmpdir()
    pt = free_port()
    a = fault_agent(d, "tcp", pt, "64k", "256k", "file")
    n = 200000
    data = b"".join(b'{"seq":%d,"pad":"%s"}\n' % (i, b"p" * 60) for i in range(n))
    s = socket.create_connection(("127.0.0.1", pt))
    s.setblocking(False)
    sent, stalled_since, stalled = 0, None, False
    deadline = time.time() + 60
    while sent < len(data) and time.time() < deadline:
        try:
            sent += s.send(data[sent:sent + 65536])
            stalled_since = None
        except BlockingIOError:
            now = time.time()
            stalled_since = stalled_since or now
            if now - stalled_since > 1.0:
                stalled = True
            time.sleep(0.01)
    s.close()
    assert sent == len(data)
    assert stalled, "the client was never made to wait\n" + lstest.tail_text(a.log())
    a.wait_log(r"paused: an output buffer is full")
    seqs = wait_until(lambda: len(delivered(d)) >= n and delivered(d), timeout=120,
                      what="all records delivered")
    assert sorted(seqs) == list(range(n))
    assert a.stop() == 0


def test_udp_full_buffer_drops_are_counted_and_logged():
    """UDP peers cannot be made to wait: with the buffer full, datagrams are dropped, counted
    and logged, and the ones taken before and after arrive."""
    d = tmpdir()
    pu = free_port()
    a = fault_agent(d, "udp", pu, "1k", "4k")
    for i in range(300):
        send_udp(pu, b'{"seq":%d,"pad":"%s"}' % (i, b"p" * 40))
    a.wait_log(r"the buffer is full: \d+ datagram\(s\) dropped so far")
    wait_until(lambda: delivered(d) and
               (send_udp(pu, b'{"seq":1000}') or 1000 in delivered(d)), timeout=30,
               interval=0.5, what="a datagram after the buffer drained")
    got = delivered(d)
    assert 0 < len(got) < 301 and len(set(got)) == len(got), got
    assert a.stop() == 0
