"""@type gelf (fluent-plugin-gelf with gelf-rb) against GELF receivers on 127.0.0.1 written
here from the GELF spec: UDP datagrams (zlib, chunked with the 0x1e0f header past 1420 bytes)
and TCP messages ended by a NUL. The messages are checked field by field against what the
plugin and gelf-rb build (levels, the "_" prefixes, short_message fallbacks, timestamp)."""
import json, random, re, socket, threading, zlib

import lstest
from intake import append_json as log, json_log_source
from lstest import conf, run, tmpdir, wait_until

HOST = socket.gethostname()


class UDPGelf:
    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.msgs, self.chunked, self.parts = [], 0, {}
        threading.Thread(target=self.loop, daemon=True).start()
        lstest.on_cleanup(self.s.close)

    def loop(self):
        while True:
            try:
                d, _ = self.s.recvfrom(65535)
            except OSError:
                return
            if d[:2] == b"\x1e\x0f":
                mid, seq, cnt = d[2:10], d[10], d[11]
                self.parts.setdefault(mid, {})[seq] = d[12:]
                if len(self.parts[mid]) == cnt:
                    got = self.parts.pop(mid)
                    d = b"".join(got[i] for i in range(cnt))
                    self.chunked += 1
                else:
                    continue
            self.msgs.append(json.loads(zlib.decompress(d)))


class TCPGelf:
    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.msgs = []
        threading.Thread(target=self.loop, daemon=True).start()
        lstest.on_cleanup(self.ls.close)

    def loop(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        buf = b""
        while True:
            d = c.recv(65536)
            if not d:
                return
            buf += d
            while b"\0" in buf:
                m, buf = buf.split(b"\0", 1)
                self.msgs.append(json.loads(m))


def gelf_conf(d, extra, buffer=""):
    return conf(json_log_source(d) + f"""
<match app.**>
  @type gelf
  host 127.0.0.1
{extra}
  <buffer>
    flush_mode immediate
{buffer}
  </buffer>
</match>
""", d)


RECS = [
    {"t": 1704164645.2504, "message": "hello", "level": "warn", "host": "web1", "version": 3,
     "id": 7},
    {"t": 1704164646, "short_message": "  ", "log": "from log", "level": "EMERGENCY",
     "facility": "app", "file": "a.rb", "line": 3},
    {"t": 1704164647, "level": "weird", "timestamp": "x", "msec": "123"},
]


def expected(protocol):
    base = {"facility": "fluentd", "protocol": protocol, "version": "1.1", "host": HOST}
    return [
        dict(base, level=4, timestamp=1704164645.25, _tag="app.web", short_message="hello",
             _host="web1", _version=3, _id=7),
        dict(base, facility="app", level=1, timestamp=1704164646.0, _tag="app.web",
             short_message="from log", file="a.rb", line=3),
        dict(base, level=1, timestamp=1704164647.0, _tag="app.web", _level="weird",
             _timestamp="x", _msec="123", short_message="(no message)"),
    ]


def test_udp_messages_as_the_plugin_builds_them_and_chunking():
    srv = UDPGelf()
    d = tmpdir()
    rnd = random.Random(3)
    big = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6000))
    log(d, RECS + [{"t": 1704164648, "message": big}])
    p = run(["-c", gelf_conf(d, f"  port {srv.port}"), "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    wait_until(lambda: len(srv.msgs) == 4, 10, what="4 messages")
    got = srv.msgs
    assert got[:3] == expected(0), got[:3]
    assert list(got[0])[:7] == ["facility", "protocol", "version", "host", "level",
                                "timestamp", "_tag"], list(got[0])
    assert got[3]["short_message"] == big and srv.chunked == 1, (srv.chunked, len(got))


def test_tcp_nul_ended_json_and_record_host():
    srv = TCPGelf()
    d = tmpdir()
    log(d, RECS[:1])
    p = run(["-c", gelf_conf(d, f"  port {srv.port}\n  protocol tcp\n  use_record_host true"),
             "--oneshot"])
    assert p.returncode == 0, p.stderr[-2000:]
    wait_until(lambda: len(srv.msgs) == 1, 10, what="1 message")
    want = expected(1)[0]
    want["host"] = want.pop("_host")
    assert srv.msgs[0] == want, srv.msgs[0]


def test_tcp_refused_keeps_the_chunk_and_bad_protocol():
    d = tmpdir()
    log(d, RECS[:1])
    port = lstest.free_port()
    p = run(["-c", gelf_conf(d, f"  port {port}\n  protocol tcp",
                             "    retry_max_times 1\n    retry_wait 0.2"), "--oneshot"], timeout=60)
    assert p.returncode != 0, p.stderr[-2000:]
    assert "cannot connect to 127.0.0.1" in p.stderr, p.stderr[-2000:]
    c = conf("<match a>\n  @type gelf\n  host h\n  protocol sctp\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 1 and "either 'udp' (default) or 'tcp'" in p.stderr, p.stderr
    c = conf("<match a>\n  @type gelf\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 1 and re.search(r"\.conf:\d+.*host", p.stderr), p.stderr
