"""@type http (fluentd's in_http): real curl and urllib clients against logship on 127.0.0.1.

Records go through a file buffer into out_file (JSON lines with the event time and tag
injected), and the test compares them record by record with what it sent. The 200 must mean
"durable in the buffer": a request whose records meet a full buffer does not complete until
they are taken, and a kill -9 right after a 200 loses nothing.
"""
import glob, gzip, json, os, socket, subprocess, threading, time, urllib.error, urllib.request
from lstest import Agent, conf, free_port, tmpdir, wait_until, write

T0 = 1700000000


def http_conf(d, port, src_extra="", out_extra="", buffer_extra="", flush="0.2s", match=None):
    return conf(f"""
<source>
  @type http
  bind 127.0.0.1
  port {port}
{src_extra}
</source>
{match or f'''<match **>
  @type file
  path {d}/out/${{tag}}
  append true
  <format>
    @type json
  </format>
  <inject>
    time_key t
    time_type float
    tag_key tg
  </inject>
  <buffer tag>
    @type file
    path {d}/buf
    flush_interval {flush}
{buffer_extra}
  </buffer>
{out_extra}
</match>'''}
""", d)


def start(cfg):
    a = Agent(cfg).start()
    a.wait_log(r"listening on http://")
    return a


def curl(port, path, *args):
    """(status, headers dict lower-cased, body bytes) of one curl request."""
    d = tmpdir()
    hf, bf = os.path.join(d, "h"), os.path.join(d, "b")
    p = subprocess.run(["curl", "-s", "--max-time", "60", "-D", hf, "-o", bf, "-w", "%{http_code}",
                        *args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                       timeout=90)
    headers = {}
    raw = open(hf, "rb").read().decode("latin-1") if os.path.exists(hf) else ""
    block = [b for b in raw.split("\r\n\r\n") if b.strip()]
    if block:
        for line in block[-1].split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = open(bf, "rb").read() if os.path.exists(bf) else b""
    return int(p.stdout or 0), headers, body


def records(d, n, timeout=20):
    def got():
        out = []
        for f in sorted(glob.glob(os.path.join(d, "out", "*"))):
            out += [json.loads(l) for l in open(f, encoding="utf-8") if l.strip()]
        return out if len(out) >= n else None
    return wait_until(got, timeout, what=f"{n} records in out_file")


def packb(obj):
    """MessagePack bytes from Debian's python3-msgpack (the runner's Python lacks it)."""
    p = subprocess.run(["/usr/bin/python3", "-c",
                        "import json,sys,msgpack; sys.stdout.buffer.write(msgpack.packb("
                        "json.loads(sys.stdin.read())))"], input=json.dumps(obj).encode(),
                       capture_output=True, check=True)
    return p.stdout


def test_each_content_type_batch_and_time_rules():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port))
    mp, bad_mp = os.path.join(d, "b.mp"), os.path.join(d, "bad.mp")
    open(mp, "wb").write(packb([{"m": 1, "time": T0 + 5}, "skipped", {"m": 2, "n": {"x": [1]}}]))
    open(bad_mp, "wb").write(b"\x81\xa1k\xc1")
    sent = [
        # (curl args, path, expected records)
        (["-d", 'json={"f":"a+b","time":%d.25}' % T0], "/app/x",
         [{"f": "a b", "t": T0 + 0.25}]),
        (["-H", "Content-Type: application/json", "-d", '[{"b":1},2,{"b":"two","time":1}]'],
         f"/app/x?time={T0 + 1}.5", [{"b": 1, "t": T0 + 1.5}, {"b": "two", "time": 1, "t": T0 + 1.5}]),
        (["-F", 'json={"mp":"part"}', "-F", f"time={T0 + 2}"], "/app/x",
         [{"mp": "part", "t": T0 + 2}]),
        (["-H", "Content-Type: application/msgpack", "--data-binary", "@" + mp], "/app/x",
         [{"m": 1, "t": T0 + 5}, {"m": 2, "n": {"x": [1]}}]),
        (["-H", "Content-Type: application/x-ndjson", "--data-binary",
          '{"nd":1,"time":%d}\r\n\n{"nd":2,"time":%d}\n' % (T0 + 3, T0 + 4)], "/app/x",
         [{"nd": 1, "t": T0 + 3}, {"nd": 2, "t": T0 + 4}]),
        (["-d", "msgpack=" + "".join("%%%02x" % b for b in packb({"q": "form-mp", "time": T0}))],
         "/app/x", [{"q": "form-mp", "t": T0}]),
    ]
    want = []
    for args, path, exp in sent:
        st, h, body = curl(port, path, *args)
        assert (st, body) == (200, b""), (args, st, body, a.log()[-2000:])
        assert h["content-type"] == "text/plain"
        want += exp
    # Python's urllib, gzip Content-Encoding
    req = urllib.request.Request(f"http://127.0.0.1:{port}/app/x?time={T0 + 9}",
                                 data=gzip.compress(b'{"z":"gz"}'), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Content-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200 and r.read() == b""
    want.append({"z": "gz", "t": T0 + 9})
    got = records(d, len(want))
    for r in got:
        assert r.pop("tg") == "app.x"
        if r.get("t", 0) > time.time() - 600:       # no time given: now
            r["t"] = "now"
    want = [dict(w, t=w.get("t", "now")) for w in want]
    assert got == want, (got, want)

    # errors: nothing is emitted, fluentd's status and body
    for args, path, body in [
        (["-H", "Content-Type: application/json", "-d", '{"a":'], "/app/x", "invalid JSON"),
        (["-d", "other=1"], "/app/x", "'json', 'ndjson' or 'msgpack' parameter is required"),
        (["-d", 'json={"time":"soon"}'], "/app/x", "can't convert String into an exact number"),
        (["-H", "Content-Type: application/json", "-d", '[{"ok":1},{"bad":]'], "/app/x",
         "invalid JSON"),
        (["-H", "Content-Type: application/msgpack", "--data-binary", "@" + bad_mp], "/app/x",
         "invalid or truncated MessagePack at byte 0"),
    ]:
        st, h, b = curl(port, path, *args)
        assert st == 400 and b.decode() == f"400 Bad Request\n{body}\n", (args, st, b)
    st, _, b = curl(port, "/health")
    assert (st, b) == (200, b"")
    time.sleep(0.5)
    assert len(records(d, len(want))) == len(want), "a refused request emitted records"
    assert "failed to process request for 'app.x': invalid JSON" in a.log()
    assert a.stop() == 0


def test_headers_remote_addr_query_params_and_tag_prefix():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port, "  add_http_headers true\n  add_remote_addr true\n"
                                 "  add_query_params true\n  add_tag_prefix pre\n"))
    st, _, _ = curl(port, "/a/b/?x-y=1", "-H", "X-Custom-Thing: v1", "-H", "User-Agent: ua",
                    "-d", 'json={"k":1}')
    assert st == 200
    st, _, _ = curl(port, "/a/b", "-H", "X-Forwarded-For: 192.0.2.7, 198.51.100.1",
                    "-H", "Content-Type: application/json", "-d", '{"k":2}')
    assert st == 200
    r1, r2 = records(d, 2)
    assert r1["tg"] == r2["tg"] == "pre.a.b"
    assert r1["k"] == 1 and r1["HTTP_X_CUSTOM_THING"] == "v1" and r1["HTTP_USER_AGENT"] == "ua"
    assert r1["HTTP_HOST"] == f"127.0.0.1:{port}" and r1["QUERY_X_Y"] == "1"
    assert r1["REMOTE_ADDR"] == "127.0.0.1"
    assert r2["REMOTE_ADDR"] == "192.0.2.7"
    assert r2["HTTP_X_FORWARDED_FOR"] == "192.0.2.7, 198.51.100.1"
    assert a.stop() == 0


def test_cors_preflight_and_origins():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port, '  cors_allow_origins ["http://foo.com", "http://*.bar.com"]\n'
                                 "  cors_allow_credentials true\n"))
    pre = ["-X", "OPTIONS", "-H", "Access-Control-Request-Method: POST",
           "-H", "Access-Control-Request-Headers: Content-Type"]
    st, h, _ = curl(port, "/t", *pre, "-H", "Origin: http://foo.com")
    assert st == 200, st
    assert h["access-control-allow-origin"] == "http://foo.com"
    assert h["access-control-allow-methods"] == "POST"
    assert h["access-control-allow-headers"] == "Content-Type"
    assert h["access-control-allow-credentials"] == "true"
    st, h, _ = curl(port, "/t", *pre, "-H", "Origin: http://x.bar.com")
    assert st == 200 and h["access-control-allow-origin"] == "http://x.bar.com"
    assert curl(port, "/t", *pre, "-H", "Origin: http://evil.com")[0] == 403
    assert curl(port, "/t", "-X", "OPTIONS", "-H", "Access-Control-Request-Method: GET",
                "-H", "Origin: http://foo.com")[0] == 403
    st, h, _ = curl(port, "/t", "-H", "Origin: http://foo.com", "-d", 'json={"o":1}')
    assert st == 200 and h["access-control-allow-origin"] == "http://foo.com"
    assert h["access-control-allow-credentials"] == "true"
    assert curl(port, "/t", "-H", "Origin: http://evil.com", "-d", 'json={"o":2}')[0] == 403
    assert curl(port, "/t", "-d", 'json={"o":3}')[0] == 200       # server to server: no Origin
    assert [r["o"] for r in records(d, 2)] == [1, 3]
    assert a.stop() == 0
    # fluentd's configuration error
    bad = http_conf(tmpdir(), free_port(), "  cors_allow_credentials true\n")
    b = Agent(bad).start()
    assert b.wait() != 0
    assert "Cannot enable cors_allow_credentials without specific origins" in b.log()


def test_204_and_empty_gif_responses():
    d = tmpdir()
    p1, p2 = free_port(), free_port()
    cfg = http_conf(d, p1, "  use_204_response true\n</source>\n<source>\n  @type http\n"
                           f"  bind 127.0.0.1\n  port {p2}\n  respond_with_empty_img true\n")
    a = Agent(cfg).start()
    wait_until(lambda: a.log().count("listening on http://") == 2, what="both listeners")
    st, h, b = curl(p1, "/t", "-d", 'json={"n":204}')
    assert (st, b) == (204, b"")
    st, h, b = curl(p2, "/t", "-d", 'json={"n":200}')
    assert st == 200 and h["content-type"].startswith("image/gif")
    assert b.startswith(b"GIF89a\x01\x00\x01\x00") and len(b) == 35
    assert sorted(r["n"] for r in records(d, 2)) == [200, 204]
    assert a.stop() == 0


def test_body_size_limit_413_and_custom_parser():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port, "  body_size_limit 1k\n  <parse>\n    @type none\n  </parse>\n"))
    st, h, b = curl(port, "/t", "--data-binary", "x" * 2000)
    assert (st, b) == (413, b"Too large")
    # chunked: no Content-Length, the limit is found while reading
    st, h, b = curl(port, "/t", "-H", "Transfer-Encoding: chunked", "--data-binary", "y" * 1500)
    assert (st, b) == (413, b"Too large")
    # far over: read up to twice the limit, then the connection is closed
    huge = write(os.path.join(d, "huge"), "y" * 500000)
    st, h, b = curl(port, "/t", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + huge)
    assert st in (0, 413), st
    st, _, _ = curl(port, f"/t?time={T0}", "--data-binary", "hello world")
    assert st == 200
    assert records(d, 1) == [{"message": "hello world", "t": T0, "tg": "t"}]
    assert "over body_size_limit" in a.log()
    assert a.stop() == 0


def post_async(port, path, body, ctype="application/json"):
    res = {}

    def go():
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                res["status"], res["body"] = r.status, r.read()
        except urllib.error.HTTPError as e:
            res["status"], res["body"] = e.code, e.read()
        res["at"] = time.monotonic()
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, res


def blocking_match(d, fail_for, extra=""):
    return f"""<match **>
  @type fault
  fail_for {fail_for}
  path {d}/delivered
  <format>
    @type json
  </format>
  <buffer>
    @type file
    path {d}/buf
    chunk_limit_size 1k
    total_limit_size 4k
    overflow_action block
    flush_interval 0.1s
    retry_wait 0.2s
    retry_max_interval 0.5s
  </buffer>
</match>"""


def test_response_waits_until_a_full_buffer_takes_the_records():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port, match=blocking_match(d, 4)))
    started = time.monotonic()
    batch = [{"seq": i, "pad": "p" * 100} for i in range(80)]     # ~9 KB: twice the buffer
    t, res = post_async(port, "/blk", json.dumps(batch).encode())
    a.wait_log(r"buffer is full")
    time.sleep(1.0)
    assert t.is_alive() and "status" not in res, "answered while its records were not taken"
    t.join(60)
    assert res["status"] == 200 and res["body"] == b"", res
    assert res["at"] - started >= 3.5, "answered before the output drained the full buffer"
    def delivered():
        p = os.path.join(d, "delivered")
        lines = open(p).read().splitlines() if os.path.exists(p) else []
        return lines if len(lines) >= 80 else None
    got = [json.loads(l)["seq"] for l in wait_until(delivered, 30, what="80 delivered")]
    assert got == list(range(80)), got
    assert a.stop() == 0


def test_buffer_wait_timeout_answers_500_and_keeps_what_was_taken():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port, "  buffer_wait_timeout 1\n", match=blocking_match(d, 5)))
    batch = [{"seq": i, "pad": "p" * 100} for i in range(80)]
    t, res = post_async(port, "/blk", json.dumps(batch).encode())
    t.join(30)
    assert res["status"] == 500, res
    assert res["body"] == b"500 Internal Server Error\nbuffer space has too many data\n"
    m = a.wait_log(r"answered 500 after (\d+) of the request's records")
    taken = int(m.group(1))
    assert 0 < taken < 80
    def delivered():
        p = os.path.join(d, "delivered")
        lines = open(p).read().splitlines() if os.path.exists(p) else []
        return lines if len(lines) >= taken else None
    got = [json.loads(l)["seq"] for l in wait_until(delivered, 30, what="taken records")]
    time.sleep(0.5)
    assert got == list(range(taken)), got
    assert a.stop() == 0


def test_acknowledged_records_survive_kill9():
    d = tmpdir()
    port = free_port()
    cfg = http_conf(d, port, flush="30s")
    a = start(cfg)
    sent = []
    for i in range(5):
        body = [{"seq": i * 10 + j} for j in range(10)]
        st, _, _ = curl(port, "/k", "-H", "Content-Type: application/json", "-d", json.dumps(body))
        assert st == 200
        sent += [r["seq"] for r in body]
    a.kill9()
    assert not glob.glob(os.path.join(d, "out", "*")), "flushed early: the test proves nothing"
    cfg2 = http_conf(d, port, flush="0.2s")
    b = start(cfg2)
    got = [r["seq"] for r in records(d, len(sent))]
    assert got == sent
    assert b.stop() == 0


def test_garbage_huge_headers_slow_and_many_clients():
    d = tmpdir()
    port = free_port()
    a = start(http_conf(d, port, "  keepalive_timeout 5\n  max_connections 64\n"))

    def raw(data, read=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(data)
        out = b""
        if read:
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    out += c
            except socket.timeout:
                pass
        s.close()
        return out

    # garbage: closed (with a 400, or at keepalive_timeout), nothing emitted
    t0 = time.monotonic()
    for junk in (b"\x00\xff garbage \r\n\r\n", b"GARBAGE\r\n\r\n", b"POST / HTTP/9\r\n\r\n"):
        assert raw(junk)[:12] in (b"", b"HTTP/1.1 400", b"HTTP/1.1 505")
    assert time.monotonic() - t0 < 20
    big = b"POST /t HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"
    assert raw(big)[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 413")
    # a slow client (one byte of its body) is closed after keepalive_timeout
    slow = socket.create_connection(("127.0.0.1", port), timeout=20)
    slow.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    t0 = time.monotonic()
    # 500 idle connections, max_connections 64: the oldest idle ones make room for new clients
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(500)]
    t1 = time.monotonic()
    st, _, _ = curl(port, "/t", "-d", 'json={"during":1}')
    assert st == 200 and time.monotonic() - t1 < 3, "idle connections kept a client out"
    assert slow.recv(100) == b"" and 4 < time.monotonic() - t0 < 12, "slow client not closed"
    for s in idle:
        s.close()
    # the server still answers, and the garbage left no record
    st, _, _ = curl(port, "/t", "-d", 'json={"after":1}')
    assert st == 200
    assert [r["during" if "during" in r else "after"] for r in records(d, 2)] == [1, 1]
    assert len(records(d, 2)) == 2
    assert a.alive()
    assert a.stop() == 0
