"""in_forward against real clients: Debian's python3-fluent-logger and hand-built frames
(tests/lib/fwdpeer.py, python3-msgpack), every mode, EventTime, acks only once the buffer
holds the records, the shared_key handshake byte by byte, TLS with client certificates,
exactly once for retransmitted chunk ids (also across kill -9), and hostile clients.
Records end in out_file through a file buffer and are compared record by record.
"""
import glob, json, os, re, signal, socket, subprocess, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until

PY = "/usr/bin/python3"
PEER = os.path.join(lstest.ROOT, "tests", "lib", "fwdpeer.py")


def peer(code, timeout=60):
    """Run code under Debian's python with fwdpeer as F; return its printed JSON lines."""
    if not os.path.exists(PY):
        raise lstest.Skip("no /usr/bin/python3")
    p = subprocess.run([PY, PEER, code], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def setup(extra="", buffer_extra="flush_mode interval\n    flush_interval 3600s",
          out_extra="", d=None, port=None):
    d = d or tmpdir()
    port = port or lstest.free_port()
    c = conf(f"""
<source>
  @type forward
  bind 127.0.0.1
  port {port}
  chunk_id_file {d}/chunk_ids
  {extra}
</source>
<match **>
  @type file
  path {d}/out/app
  {out_extra}
  <buffer tag>
    @type file
    path {d}/buf
    flush_at_shutdown true
    {buffer_extra}
  </buffer>
</match>
""", d)
    a = Agent(c).start()
    a.wait_log("listening on 127.0.0.1")
    return a, port, d


def output(d):
    """[(tag, record)] of every out_file line, in file then line order."""
    recs = []
    for f in sorted(glob.glob(os.path.join(d, "out", "app*"))):
        for line in lstest.read(f).splitlines():
            if line.strip():
                _, tag, js = line.split("\t", 2)
                recs.append((tag, json.loads(js)))
    return recs


def stop_and_read(a, d):
    assert a.stop() == 0, lstest.tail_text(a.log())
    return output(d)


def test_all_four_modes_and_time_forms():
    a, port, d = setup()
    got = peer(f"""
P = {port}
recs = [{{"seq": i, "s": "v" * i, "nest": {{"a": [i, None, True]}}}} for i in range(5)]
out = []
out.append(F.request(P, F.message("m.event", F.event_time(1700000000, 123456789), recs[0], {{"chunk": "a1"}}), ack="a1"))
out.append(F.request(P, F.message("m.int", 1700000001, recs[1], {{"chunk": "a2"}}), ack="a2"))
out.append(F.request(P, F.forward("fwd", F.entries(recs), {{"chunk": "a3"}}), ack="a3"))
out.append(F.request(P, F.packed("pk.bin", F.entries(recs, et=False), {{"chunk": "a4"}}), ack="a4"))
out.append(F.request(P, F.packed("pk.str", F.entries(recs), {{"chunk": "a5"}}, as_str=True), ack="a5"))
out.append(F.request(P, F.packed("pk.gz", F.entries(recs), {{"chunk": "a6"}}, gz=True, members=3), ack="a6"))
# Fluent Bit's [[time, meta], record] form
out.append(F.request(P, F.forward("fb", [([F.event_time(1700000009, 1), {{}}], recs[2])], {{"chunk": "a7"}}), ack="a7"))
print(json.dumps([o["ack"] for o in out]))
""")
    assert got[0] == [{"ack": f"a{i}"} for i in range(1, 8)], got
    # libssl is loaded only for <transport tls> (a sanitizer build links it anyway)
    if not any("libssl" in l for l in lstest.linked_libs()):
        assert not any("libssl" in l for l in lstest.mapped_libs(a.p.pid))
    recs = stop_and_read(a, d)
    want = [{"seq": i, "s": "v" * i, "nest": {"a": [i, None, True]}} for i in range(5)]
    by_tag = {}
    for tag, r in recs:
        by_tag.setdefault(tag, []).append(r)
    assert by_tag["m.event"] == want[:1]
    assert by_tag["m.int"] == want[1:2]
    for t in ("fwd", "pk.bin", "pk.str", "pk.gz"):
        assert by_tag[t] == want, (t, by_tag.get(t))
    assert by_tag["fb"] == [want[2]]
    assert len(recs) == 2 + 4 * 5 + 1


def test_event_time_nanoseconds_kept():
    a, port, d = setup(out_extra="<format>\n    @type json\n  </format>\n  <inject>\n    time_key t\n    time_type string\n    time_format %s.%N\n  </inject>")
    peer(f"""
F.request({port}, F.forward("t", [(F.event_time(1700000000, 123456789), {{"k": 1}}), (1700000005, {{"k": 2}})], {{"chunk": "x"}}), ack="x")
""")
    assert a.stop() == 0
    lines = []
    for f in sorted(glob.glob(os.path.join(d, "out", "app*"))):
        lines += [json.loads(l) for l in lstest.read(f).splitlines() if l.strip()]
    assert [l["t"] for l in lines] == ["1700000000.123456789", "1700000005.000000000"], lines


def test_fluent_logger_sender_and_asyncsender():
    a, port, d = setup()
    peer(f"""
from fluent import sender, asyncsender
s = sender.FluentSender("app", host="127.0.0.1", port={port})
for i in range(50):
    assert s.emit("web", {{"i": i, "src": "sync"}}), s.last_error
s.close()
s = sender.FluentSender("app", host="127.0.0.1", port={port}, nanosecond_precision=True)
assert s.emit_with_time("ns", 1700000000.25, {{"i": 0, "src": "ns"}})
s.close()
s = asyncsender.FluentSender("app", host="127.0.0.1", port={port})
for i in range(50):
    s.emit("async", {{"i": i, "src": "async"}})
s.close()
""")
    recs = stop_and_read(a, d)
    sync = [r for t, r in recs if t == "app.web"]
    asy = [r for t, r in recs if t == "app.async"]
    ns = [r for t, r in recs if t == "app.ns"]
    assert sync == [{"i": i, "src": "sync"} for i in range(50)]
    assert asy == [{"i": i, "src": "async"} for i in range(50)]
    assert ns == [{"i": 0, "src": "ns"}]


def test_ack_only_after_the_buffer_holds_the_records():
    a, port, d = setup()
    # the client checks the buffer directory the instant the ack arrives
    got = peer(f"""
import glob
out = []
for n in range(20):
    marker = "marker-%d-%s" % (n, os.urandom(6).hex())
    F.request({port}, F.packed("ack.t", F.entries([{{"m": marker, "i": i}} for i in range(100)]), {{"chunk": "k%d" % n}}), ack="k%d" % n)
    data = b"".join(open(f, "rb").read() for f in glob.glob("{d}/buf/*"))
    out.append(data.count(marker.encode()))
print(json.dumps(out))
""")
    assert got[0] == [100] * 20, got
    recs = stop_and_read(a, d)
    assert len(recs) == 2000


def test_retransmitted_chunk_is_acked_and_not_written_twice():
    a, port, d = setup()
    got = peer(f"""
data = F.packed("dup", F.entries([{{"i": i}} for i in range(10)]), {{"chunk": "Zm9vYmFy\\n"}})
acks = [F.request({port}, data, ack="Zm9vYmFy\\n")["ack"] for _ in range(3)]
print(json.dumps(acks))
""")
    assert got[0] == [{"ack": "Zm9vYmFy\n"}] * 3
    recs = stop_and_read(a, d)
    assert recs == [("dup", {"i": i}) for i in range(10)], recs


def test_exactly_once_across_kill9_after_upload():
    d = tmpdir()
    port = lstest.free_port()
    a, port, d = setup(d=d, port=port, buffer_extra="flush_mode immediate")
    send = """
data = F.packed("k9", F.entries([{"c": %(c)d, "i": i} for i in range(5)]), {"chunk": "chunk-%(c)d"})
print(json.dumps(F.request(%(p)d, data, ack="chunk-%(c)d")["ack"]))
"""
    for c in range(3):
        peer(send % {"c": c, "p": port})
    # delivered and the buffer chunks deleted: only the journal knows these ids now
    wait_until(lambda: len(output(d)) == 15, what="15 records in out_file")
    wait_until(lambda: not glob.glob(os.path.join(d, "buf", "*.chunk")), what="empty buffer")
    a.kill9()
    a.start()
    a.wait_log("listening on 127.0.0.1")
    # the sender retransmits what it did not see acked, plus new chunks
    for c in range(5):
        assert peer(send % {"c": c, "p": port})[0] == {"ack": f"chunk-{c}"}
    recs = stop_and_read(a, d)
    want = [("k9", {"c": c, "i": i}) for c in range(5) for i in range(5)]
    assert sorted(recs, key=lambda x: (x[1]["c"], x[1]["i"])) == want, recs


def test_exactly_once_across_kill9_with_records_still_in_the_buffer():
    a, port, d = setup()
    send = """
data = F.forward("kb", F.entries([{"c": %(c)d, "i": i} for i in range(4)]), {"chunk": "id-%(c)d"})
print(json.dumps(F.request(%(p)d, data, ack="id-%(c)d")["ack"]))
"""
    for c in range(2):
        peer(send % {"c": c, "p": port})
    a.kill9()
    a.start()
    a.wait_log("listening on 127.0.0.1")
    for c in range(3):
        assert peer(send % {"c": c, "p": port})[0] == {"ack": f"id-{c}"}
    recs = stop_and_read(a, d)
    assert sorted(recs, key=lambda x: (x[1]["c"], x[1]["i"])) == \
        [("kb", {"c": c, "i": i}) for c in range(3) for i in range(4)], recs


SECURITY = """
  <security>
    self_hostname server.example
    shared_key s3cret
    user_auth true
    <user>
      username alice
      password pw1
    </user>
  </security>"""


def test_handshake_byte_by_byte_then_data():
    a, port, d = setup(extra=SECURITY)
    got = peer(f"""
s = F.connect({port})
pong, helo, r = F.handshake(s, "s3cret", username="alice", password="pw1", bytewise=True)
assert isinstance(helo[1]["nonce"], bytes) and len(helo[1]["nonce"]) == 16, helo
assert helo[1]["keepalive"] is True
s.sendall(F.message("sec", 1700000000, {{"ok": 1}}, {{"chunk": "h1"}}))
print(json.dumps({{"pong": pong, "ack": r.next()}}))
""")
    assert got[0]["pong"][:4] == ["PONG", True, "", "server.example"], got
    assert got[0]["ack"] == {"ack": "h1"}
    recs = stop_and_read(a, d)
    assert recs == [("sec", {"ok": 1})]


def test_handshake_wrong_key_or_password_refused():
    a, port, d = setup(extra=SECURITY)
    got = peer(f"""
out = []
for key, pw in (("wrong", "pw1"), ("s3cret", "bad")):
    s = F.connect({port})
    pong, helo, r = F.handshake(s, key, username="alice", password=pw)
    out.append([pong[:3], F.closed_within(s)])
# data without a handshake is not accepted either
s = F.connect({port})
r = F.Reader(s)
r.next()
s.sendall(F.message("sec", 1700000000, {{"no": 1}}, {{"chunk": "x"}}))
out.append(F.closed_within(s))
print(json.dumps(out))
""")
    assert got[0][0] == [["PONG", False, "shared_key mismatch"], True], got
    assert got[0][1] == [["PONG", False, "username/password mismatch"], True], got
    assert got[0][2] is True
    a.wait_log(r"handshake with 127\.0\.0\.1 failed: shared_key mismatch")
    recs = stop_and_read(a, d)
    assert recs == []


def test_client_network_restriction():
    extra = """
  <security>
    self_hostname server.example
    shared_key s3cret
    allow_anonymous_source false
    <client>
      network 10.0.0.0/8
    </client>
  </security>"""
    a, port, d = setup(extra=extra)
    got = peer(f"""
s = F.connect({port})
pong, helo, r = F.handshake(s, "s3cret")
print(json.dumps(pong[:3]))
""")
    assert got[0] == ["PONG", False, "anonymous source host '127.0.0.1' denied"], got
    a.stop()


def test_udp_heartbeat():
    a, port, d = setup()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(b"\0", ("127.0.0.1", port))
    data, _ = s.recvfrom(16)
    assert data == b"\0"
    a.stop()


def test_hostile_clients_do_not_stop_the_server():
    a, port, d = setup(extra="chunk_size_limit 4k\n  max_connections 200")
    got = peer(f"""
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
P = {port}
res = {{}}
# malformed MessagePack: 0xc1 is never valid
s = F.connect(P); s.sendall(b"\\x92\\xa1a\\xc1"); res["malformed"] = F.closed_within(s)
# a request over chunk_size_limit: no ack, closed
s = F.connect(P)
s.sendall(F.packed("big", F.entries([{{"x": "y" * 1000}} for _ in range(10)]), {{"chunk": "big"}}))
res["oversize"] = F.closed_within(s)
# an array announcing 2^32-1 elements in 5 bytes
s = F.connect(P); s.sendall(b"\\xdd\\xff\\xff\\xff\\xff"); res["huge_array"] = F.closed_within(s)
# a packed entry announcing 2^32-1 elements: the rest of that request is skipped, acked
s = F.connect(P)
res["packed_huge"] = F.request(P, msgpack.packb(["ph", b"\\x92\\x01\\x80" + b"\\xdd\\xff\\xff\\xff\\xff", {{"chunk": "ph"}}], use_bin_type=True), ack="ph", sock=s)["ack"]
s.close()
# a slow client: one byte a second, while others are served
slow = F.connect(P)
data = F.message("slow", 1700000000, {{"slow": 1}}, {{"chunk": "slow"}})
# 10,000 connections, at most ~1000 open at once
opened = 0
live = []
for i in range(10000):
    try:
        live.append(F.connect(P, timeout=5))
        opened += 1
    except OSError:
        pass
    if len(live) >= 1000:
        for c in live: c.close()
        live = []
    if i % 2000 == 0 and len(data) > 0:
        slow.sendall(data[:1]); data = data[1:]
for c in live: c.close()
res["opened"] = opened
# the server still answers promptly
t0 = time.time()
res["ack"] = F.request(P, F.message("ok", 1700000000, {{"fine": 1}}, {{"chunk": "ok"}}), ack="ok")["ack"]
res["latency"] = time.time() - t0
while data:
    slow.sendall(data[:1]); data = data[1:]; time.sleep(0.05)
res["slow_ack"] = F.Reader(slow).next()
print(json.dumps(res))
""", timeout=300)
    r = got[0]
    assert r["malformed"] and r["oversize"] and r["huge_array"], r
    assert r["packed_huge"] == {"ack": "ph"}, r
    assert r["opened"] >= 9000, r
    assert r["ack"] == {"ack": "ok"} and r["latency"] < 5, r
    assert r["slow_ack"] == {"ack": "slow"}, r
    log = a.log()
    assert "malformed MessagePack from 127.0.0.1" in log, lstest.tail_text(log)
    assert "over chunk_size_limit" in log, lstest.tail_text(log)
    assert "max_connections 200 reached" in log, lstest.tail_text(log)
    assert "broken packed entries from 127.0.0.1 (tag 'ph')" in log, lstest.tail_text(log)
    recs = stop_and_read(a, d)
    assert sorted(t for t, _ in recs) == ["ok", "ph", "slow"], recs


def test_silent_connections_give_way_at_max_connections():
    """max_connections clients that connect and send nothing do not shut others out: once the
    longest-silent one has been silent 10 s it is closed for a newcomer, while a client that
    sends a byte a second is kept and its message is acknowledged."""
    a, port, d = setup(extra="max_connections 4")
    got = peer(f"""
P = {port}
res = {{}}
idle = [F.connect(P) for _ in range(3)]
slow = F.connect(P)
data = F.message("slow", 1700000000, {{"slow": 1}}, {{"chunk": "slow"}})
time.sleep(0.5)
# at the limit and nobody silent long enough: refused
res["refused_early"] = F.closed_within(F.connect(P), timeout=5)
t0 = time.time()
while time.time() - t0 < 11:
    slow.sendall(data[:1]); data = data[1:]; time.sleep(1)
res["ack"] = F.request(P, F.message("new", 1700000000, {{"new": 1}}, {{"chunk": "new"}}), ack="new")["ack"]
res["idle_closed"] = sum(1 for s in idle if F.closed_within(s, timeout=1))
slow.sendall(data)
res["slow_ack"] = F.Reader(slow).next()
print(json.dumps(res))
""", timeout=120)
    r = got[0]
    assert r["refused_early"], r
    assert r["ack"] == {"ack": "new"}, r
    assert r["idle_closed"] == 1, r
    assert r["slow_ack"] == {"ack": "slow"}, r
    log = a.log()
    assert "closed the connection from 127.0.0.1, silent for" in log, lstest.tail_text(log)
    recs = stop_and_read(a, d)
    assert sorted(t for t, _ in recs) == ["new", "slow"], recs


def make_certs(d):
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)
    for ca in ("ca", "evil"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out",
             f"{ca}.crt", "-days", "2", "-subj", f"/CN={ca}")
    for name, ca in (("server", "ca"), ("client", "ca"), ("bad", "evil")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", "/CN=localhost")
        ext = os.path.join(d, f"{name}.ext")
        lstest.write(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext)


def test_tls_client_certificates():
    d = tmpdir()
    make_certs(d)
    extra = f"""
  <transport tls>
    cert_path {d}/server.crt
    private_key_path {d}/server.key
    ca_path {d}/ca.crt
    client_cert_auth true
  </transport>"""
    a, port, d = setup(extra=extra, d=d)
    got = peer(f"""
def ctx(name):
    c = ssl.create_default_context(cafile="{d}/ca.crt")
    if name:
        c.load_cert_chain("{d}/%s.crt" % name, "{d}/%s.key" % name)
    return c
res = {{}}
for name in ("bad", None):
    try:
        s = F.connect({port}, tls=ctx(name))
        s.sendall(F.message("tls", 1700000000, {{"who": str(name)}}, {{"chunk": "t"}}))
        res[str(name)] = F.Reader(s).next(5)
    except (ssl.SSLError, OSError, EOFError) as e:
        res[str(name)] = "refused"
s = F.connect({port}, tls=ctx("client"))
res["client"] = F.request(0, F.message("tls", 1700000000, {{"who": "client"}}, {{"chunk": "t"}}), ack="t", sock=s)["ack"]
print(json.dumps(res))
""")
    assert got[0] == {"bad": "refused", "None": "refused", "client": {"ack": "t"}}, got
    a.wait_log("TLS handshake with 127.0.0.1 failed")
    assert any("libssl" in l for l in lstest.mapped_libs(a.p.pid))
    recs = stop_and_read(a, d)
    assert recs == [("tls", {"who": "client"})], recs


def peer_cert_text(d, pem):
    path = os.path.join(d, "peer.pem")
    lstest.write(path, pem)
    return subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-issuer",
                           "-ext", "basicConstraints,nsCertType,extendedKeyUsage"],
                          capture_output=True, text=True, check=True).stdout


def test_tls_certificate_made_at_start_insecure_or_by_a_ca():
    # fluentd's cert_option: no cert_path and insecure true: a self-signed server certificate;
    # ca_cert_path: one signed by that CA, which a client trusting the CA accepts
    d = tmpdir()
    make_certs(d)
    for extra, cafile in (("insecure true\n    generate_cert_common_name logship-test", None),
                          (f"ca_cert_path {d}/ca.crt\n    ca_private_key_path {d}/ca.key", "ca")):
        a, port, d2 = setup(extra=f"<transport tls>\n    {extra}\n  </transport>")
        got = peer(f"""
import ssl
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.check_hostname = False
cafile = {cafile!r}
if cafile:
    c.load_verify_locations("{d}/%s.crt" % cafile)
else:
    c.verify_mode = ssl.CERT_NONE
s = F.connect({port}, tls=c)
pem = ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))
ack = F.request(0, F.message("gen", 1700000000, {{"k": 1}}, {{"chunk": "g"}}), ack="g", sock=s)
print(json.dumps({{"pem": pem, "ack": ack}}))
if cafile:
    e = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    e.check_hostname = False
    e.load_verify_locations("{d}/evil.crt")
    try:
        F.connect({port}, tls=e)
        print(json.dumps("accepted"))
    except ssl.SSLError:
        print(json.dumps("refused"))
""")
        assert got[0]["ack"]["ack"] == {"ack": "g"}, got
        text = peer_cert_text(d2, got[0]["pem"])
        if cafile:
            assert "issuer=CN = ca" in text and "TLS Web Server Authentication" in text, text
            assert got[1] == "refused", got
        else:
            assert "CN = logship-test" in text and "C = US, ST = CA, L = Mountain View" in text, text
            assert text.count("CN = logship-test") == 2, text     # subject and issuer
            assert "insecure TLS communication server is configured" in a.log(), a.log()
        assert "CA:FALSE" in text and "SSL Server" in text, text
        assert stop_and_read(a, d2) == [("gen", {"k": 1})]
    # neither a certificate nor a way to make one: fluentd's message, file:line
    c = conf("<source>\n  @type forward\n  <transport tls>\n  </transport>\n</source>\n"
             "<match **>\n  @type null\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 1 and "specify either 'cert_path', 'ca_cert_path' or 'insecure'" \
        in p.stderr and ".conf:3:" in p.stderr, p.stderr


def test_tls_clients_that_close_without_reading_lose_nothing():
    # a client that writes a request over TLS and closes at once, reading nothing and sending
    # no close_notify (out_forward without acks or <security> does): OpenSSL 3 reports the
    # close as an error, and unread TLS 1.3 session tickets made the client's kernel send an
    # RST that threw the request away: 9 of 60 arrived before the fix
    a, port, d = setup(extra="<transport tls>\n    insecure true\n  </transport>")
    peer(f"""
import ssl
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.check_hostname = False
c.verify_mode = ssl.CERT_NONE
for i in range(60):
    s = F.connect({port}, tls=c)
    s.sendall(F.message("q", 1700000000, {{"i": i}}))
    s.close()   # no unwrap(): no close_notify, nothing read
print(json.dumps("sent"))
""")
    wait_until(lambda: len(glob.glob(f"{d}/buf/*")) > 0, what="buffered records")
    recs = stop_and_read(a, d)
    assert sorted(r["i"] for _, r in recs) == list(range(60)), len(recs)


def test_secure_forward_input_handshake_over_tls():
    # fluent-plugin-secure-forward's server from its own parameters: TLS with a certificate
    # made at start, the shared_key handshake, __HOSTNAME__ in self_hostname, Forward mode
    d = tmpdir()
    make_certs(d)
    subprocess.run(["openssl", "rsa", "-in", f"{d}/ca.key", "-aes256", "-passout", "pass:capw",
                    "-out", f"{d}/ca-enc.key"], check=True, capture_output=True)
    for secure, extra, cafile in (
            ("no", "cert_auto_generate yes", None),
            ("yes", f"ca_cert_path {d}/ca.crt\n  ca_private_key_path {d}/ca-enc.key\n"
                    "  ca_private_key_passphrase capw", "ca")):
        port = lstest.free_port()
        d2 = tmpdir()
        c = conf(f"""
<source>
  @type secure_forward
  bind 127.0.0.1
  port {port}
  secure {secure}
  self_hostname __HOSTNAME__-in
  hostname receiver
  shared_key s3cret
  chunk_id_file {d2}/ids
  {extra}
</source>
<match **>
  @type file
  path {d2}/out/app
  <buffer tag>
    @type file
    path {d2}/buf
    flush_at_shutdown true
  </buffer>
</match>
""", d2)
        a = Agent(c).start()
        a.wait_log("logship started")
        got = peer(f"""
import ssl
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.check_hostname = False
cafile = {cafile!r}
if cafile:
    c.load_verify_locations("{d}/%s.crt" % cafile)
else:
    c.verify_mode = ssl.CERT_NONE
s = F.connect({port}, tls=c)
pong, helo, r = F.handshake(s, "s3cret", hostname="sender")
s.sendall(F.forward("sf.test", F.entries([{{"n": 1}}, {{"n": 2}}])))
bad = F.connect({port}, tls=c)
bpong, _, _ = F.handshake(bad, "wrong")
print(json.dumps({{"pong": pong, "bad": bpong[1]}}))
""")
        assert got[0]["pong"][1] is True and got[0]["pong"][3] == "receiver-in", got
        assert got[0]["bad"] is False, got
        wait_until(lambda: glob.glob(f"{d2}/buf/*"), what="buffered records")
        recs = stop_and_read(a, d2)
        assert recs == [("sf.test", {"n": 1}), ("sf.test", {"n": 2})], recs
        if secure == "no":
            assert "'insecure' mode has vulnerability" in a.all_logs(), a.all_logs()
    for params, pattern in (("shared_key k\n  self_hostname h", r"'secure' parameter is required"),
                            ("secure yes\n  shared_key k\n  self_hostname h",
                             r"cert_path or ca_cert_path required for secure communication"),
                            ("secure no\n  shared_key k", r"'self_hostname' parameter is required")):
        c = conf("<source>\n  @type secure_forward\n  %s\n</source>\n<match **>\n  @type null\n"
                 "</match>\n" % params)
        p = run(["-c", c, "--dry-run"])
        assert p.returncode == 1 and re.search(pattern, p.stderr) and ".conf:" in p.stderr, \
            (params, p.stderr)


def test_backpressure_stops_reading_and_loses_nothing():
    # a tiny buffer that cannot flush (out_file into a path that is a file: every write
    # fails) fills up; in_forward must stop reading, then deliver everything once the
    # output works again
    a, port, d = setup(buffer_extra="""flush_mode interval
    flush_interval 0.2s
    chunk_limit_size 4k
    total_limit_size 16k
    overflow_action block
    retry_wait 0.2s
    retry_max_interval 0.5s""")
    lstest.write(os.path.join(d, "out"), "in the way\n")
    p = subprocess.Popen([PY, PEER, f"""
for n in range(40):
    F.request({port}, F.packed("bp", F.entries([{{"n": n, "i": i, "pad": "x" * 200}} for i in range(10)]), {{"chunk": "bp%d" % n}}), ack="bp%d" % n, timeout=120)
print("done")
"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: glob.glob(os.path.join(d, "buf", "*")), what="buffer chunks")
    time.sleep(1.0)
    assert p.poll() is None, "the client finished although the buffer is full"
    os.unlink(os.path.join(d, "out"))
    out, err = p.communicate(timeout=120)
    assert "done" in out, err
    recs = stop_and_read(a, d)
    got = sorted((r["n"], r["i"]) for t, r in recs)
    assert got == [(n, i) for n in range(40) for i in range(10)], len(got)


def test_tag_rewrite_source_address_and_deny_keepalive():
    a, port, d = setup(extra="tag fixed\n  add_tag_prefix pre\n  source_address_key ip\n  "
                             "source_hostname_key host\n  deny_keepalive true")
    got = peer(f"""
s = F.connect({port})
s.sendall(F.message("orig", 1700000000, {{"k": 1}}, {{"chunk": "d1"}}) +
          F.message("orig", 1700000000, {{"k": 2}}, {{"chunk": "d2"}}))
r = F.Reader(s)
first = r.next()
try:
    second = r.next(5)
except EOFError:
    second = "closed"
print(json.dumps([first, second]))
""")
    assert got[0] == [{"ack": "d1"}, "closed"], got
    recs = stop_and_read(a, d)
    assert recs == [("pre.fixed", {"k": 1, "ip": "127.0.0.1", "host": "localhost"})], recs


def test_starts_for_a_user_who_can_write_no_state_directory():
    # the stock td-agent.conf's forward source, run by a user who may write neither
    # /var/lib/logship nor the working directory: fluentd starts (it keeps no journal), and
    # so does logship, with a per-user journal that lasts until the next boot
    import shutil
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise lstest.Skip("needs root and setpriv to run as another user")
    d = tmpdir()
    os.chmod(d, 0o755)
    port = lstest.free_port()
    c = conf(f"""
<source>
  @type forward
  bind 127.0.0.1
  port {port}
</source>
<match **>
  @type stdout
</match>
""", d)
    os.chmod(c, 0o644)
    fallback = "/tmp/logship-65534"
    shutil.rmtree(fallback, ignore_errors=True)
    env = lstest.sanitizer_env({"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          lstest.LOGSHIP, "-c", c], cwd="/", env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return p.poll() is not None
        wait_until(listening, what="the listener")
        assert p.poll() is None, p.communicate()[1][-2000:]
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    lstest.check_sanitizer(err)
    assert "the chunk id journal is '/tmp/logship-65534/in_forward-" in err, err[-2000:]
    st = os.stat(fallback)
    assert st.st_uid == 65534 and (st.st_mode & 0o777) == 0o700, oct(st.st_mode)
    shutil.rmtree(fallback, ignore_errors=True)
