"""out_forward against a Forward protocol server written with Debian's python3-msgpack
(tests/lib/fwdserver.py): PackedForward framing and EventTime byte by byte, gzip, acks (withheld:
the chunk is sent again with the same chunk id; given: the chunk is deleted), standby failover and
recovery, weights, the shared_key/user handshake, TLS with CA verification, a server down at the
start, and kill -9 of logship while chunks are in flight.
"""
import base64, glob, gzip, json, os, subprocess, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until
from fwdserver import FwdServer, _have_msgpack

FAST_BUF = """
    flush_mode interval
    flush_interval 0.2
    retry_wait 0.3
    retry_max_interval 1
    retry_forever true
"""


def need():
    if not _have_msgpack():
        raise lstest.Skip("/usr/bin/python3 has no msgpack (python3-msgpack)")


def server_block(port, extra=""):
    return f"""
  <server>
    host 127.0.0.1
    port {port}
    {extra}
  </server>"""


def fwd_conf(d, servers, out_extra="", buf_body=FAST_BUF, buf_type="file", source=None,
             count=20, rate=1000, tag="app.web"):
    source = source or f"""
<source>
  @type sample
  tag {tag}
  rate {rate}
  count {count}
  auto_increment_key seq
  sample {{"msg":"hello"}}
</source>"""
    path = f"path {d}/buf" if buf_type == "file" else ""
    return conf(f"""{source}
<match app.**>
  @type forward
  {out_extra}
  {''.join(servers)}
  <buffer tag>
    @type {buf_type}
    {path}
    {buf_body}
  </buffer>
</match>
""", d)


def seqs(msgs):
    """Every record's seq in the data messages, in order."""
    out = []
    for m in msgs:
        for e in m.get("entries", []):
            out.append(e[1]["seq"])
    return out


def data_msgs(srv):
    return [m for m in srv.messages() if "entries" in m]


def chunk_files(d):
    return [f for f in glob.glob(os.path.join(d, "buf", "**", "*"), recursive=True)
            if os.path.isfile(f) and not f.endswith((".pos", ".state", ".lock"))
            and ".meta" not in f and "backup" not in f]


def timed_source(count, sample, seq=True):
    """sample records whose event time is their field t (1700000000.5: nanoseconds too)."""
    return f"""
<source>
  @type sample
  tag app.a
  count {count}
  {"auto_increment_key seq" if seq else ""}
  sample {sample}
</source>
<filter app.**>
  @type record_transformer
  renew_time_key t
</filter>"""


def test_packed_forward_bytes_and_event_time():
    """The message is exactly 0x93, tag, bin32 entries, option map; an entry's time is fixext 8
    type 0 with big-endian seconds and nanoseconds (the example of the reference's byte sketch)."""
    need()
    d = tmpdir()
    srv = FwdServer(d).start()
    src = timed_source(1, '{"k":"v","t":1700000000.5}', seq=False)
    p = run(["-c", fwd_conf(d, [server_block(srv.port)], "require_ack_response true", source=src),
             "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    msgs = data_msgs(srv)
    assert len(msgs) == 1, msgs
    raw = bytes.fromhex(msgs[0]["raw_hex"])
    entry = bytes.fromhex("92d7006553f1001dcd650082a16ba176a174cb41d954fc40200000")
    head = b"\x93\xa5app.a\xc6" + len(entry).to_bytes(4, "big") + entry
    assert raw.startswith(head), raw.hex()
    chunk = msgs[0]["option"]["chunk"]
    opt = (b"\x83\xa4size\x01\xaacompressed\xa4text\xa5chunk" + bytes([0xa0 | len(chunk)])
           + chunk.encode())
    assert raw[len(head):] == opt, raw[len(head):].hex()
    # fluentd's chunk id: Base64 of 16 bytes with Ruby's trailing newline
    assert chunk.endswith("\n") and len(base64.b64decode(chunk)) == 16
    assert msgs[0]["entries"] == [[{"et": [1700000000, 500000000]}, {"k": "v", "t": 1700000000.5}]]


def test_time_as_integer_and_gzip():
    need()
    d = tmpdir()
    srv = FwdServer(d).start()
    src = timed_source(50, '{"k":"v","t":1700000000.5,'
                           '"n":{"a":[1,2.5,{"b":"\\u00e9"}],"z":null,"y":true}}')
    p = run(["-c", fwd_conf(d, [server_block(srv.port)], "compress gzip\n  time_as_integer true",
                            source=src, buf_body="flush_mode lazy"), "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    # no acks: the server may write what it received just after logship exits
    wait_until(lambda: sum(m["option"]["size"] for m in data_msgs(srv)) >= 50, 15,
               what="50 records on the server")
    msgs = data_msgs(srv)
    assert msgs and all(m["option"]["compressed"] == "gzip" and m["gzip_magic"] == "1f8b"
                        for m in msgs), msgs
    assert sorted(seqs(msgs)) == list(range(50))
    first = bytes.fromhex(msgs[0]["entries_hex"])
    # integer time: 92, uint32 0xce 6553f100, then the map
    assert first.startswith(bytes.fromhex("92ce6553f100")), first[:8].hex()
    assert sum(m["option"]["size"] for m in msgs) == 50
    # nested values are MessagePack maps and arrays, as fluentd sends them
    assert msgs[0]["entries"][0][1]["n"] == {"a": [1, 2.5, {"b": "\u00e9"}], "z": None, "y": True}
    # without acks there is no chunk option (fluentd sends it only with require_ack_response)
    assert all("chunk" not in m["option"] for m in msgs)


def test_ack_withheld_retransmits_same_chunk_id_then_ack_deletes_chunk():
    need()
    d = tmpdir()
    srv = FwdServer(d, mode="withhold").start()
    cfg = fwd_conf(d, [server_block(srv.port)],
                   "require_ack_response true\n  ack_response_timeout 1\n  heartbeat_type none",
                   count=5, buf_body=FAST_BUF + "    chunk_limit_records 100\n")
    a = Agent(cfg).start()
    wait_until(lambda: len(data_msgs(srv)) >= 3, 30, what="three sends without ack")
    ids = {m["option"]["chunk"] for m in data_msgs(srv)}
    assert len(ids) == 1, ids       # one chunk, sent again and again with one id
    assert chunk_files(d), "the unacknowledged chunk must stay in the buffer"
    srv.set_mode("ack")
    wait_until(lambda: not chunk_files(d), 30, what="chunk deleted after the ack")
    n = len(data_msgs(srv))
    assert {m["option"]["chunk"] for m in data_msgs(srv)} == ids
    assert sorted(set(seqs(data_msgs(srv)))) == list(range(5))
    a.stop()
    assert len(data_msgs(srv)) == n, "nothing is sent after the ack"
    assert "no ack from" in a.log(), a.log()[-2000:]


def answer_refused_then_ack(mode, pattern):
    """The server answers a chunk wrongly (mode): logged, the chunk stays, and is deleted once
    a right ack comes."""
    need()
    d = tmpdir()
    srv = FwdServer(d, mode=mode).start()
    cfg = fwd_conf(d, [server_block(srv.port)],
                   "require_ack_response true\n  ack_response_timeout 5\n  heartbeat_type none",
                   count=3)
    a = Agent(cfg).start()
    a.wait_log(pattern, 30)
    assert a.alive() and chunk_files(d)
    srv.set_mode("ack")
    wait_until(lambda: not chunk_files(d), 30, what="chunk deleted after a right ack")
    a.stop()


def test_wrong_ack_is_not_taken():
    answer_refused_then_ack("badack", "ack in response and chunk id in sent data are different")


def test_hostile_answer_is_refused_without_allocating():
    """A server claiming an array of 4 billion elements gets an error, not a 100 GB malloc."""
    answer_refused_then_ack("hugeack", "invalid or oversized MessagePack")


def test_standby_takes_over_and_primary_recovers():
    standby_failover("transport")


def test_standby_failover_with_udp_heartbeats():
    standby_failover("udp")


def standby_failover(hb):
    need()
    d = tmpdir()
    main = FwdServer(d, name="main").start()
    standby = FwdServer(d, name="standby").start()
    cfg = fwd_conf(d, [server_block(main.port), server_block(standby.port, "standby true")],
                   f"require_ack_response true\n  heartbeat_type {hb}\n  heartbeat_interval 0.2\n"
                   "  hard_timeout 1\n"
                   "  recover_wait 1\n  phi_threshold 8", count=0, rate=20)
    a = Agent(cfg).start()
    wait_until(lambda: len(data_msgs(main)) >= 3, 30, what="data on the main server")
    assert data_msgs(standby) == []
    main.stop()
    a.wait_log(r"detached forwarding server 127.0.0.1:%d" % main.port, 30)
    wait_until(lambda: len(data_msgs(standby)) >= 3, 30, what="data on the standby")
    main.start()
    a.wait_log(r"recovered forwarding server 127.0.0.1:%d" % main.port, 30)
    n_main = len(data_msgs(main))
    wait_until(lambda: len(data_msgs(main)) >= n_main + 3, 30, what="data back on the main server")
    n_standby = len(data_msgs(standby))
    n_main = len(data_msgs(main))
    wait_until(lambda: len(data_msgs(main)) >= n_main + 5, 30, what="more data on main")
    # standby is not used while the main server is up (a chunk in flight at the switch aside)
    assert len(data_msgs(standby)) <= n_standby + 1
    a.stop()
    got = seqs(data_msgs(main)) + seqs(data_msgs(standby))
    assert sorted(set(got)) == list(range(max(got) + 1)), "no record lost across the failover"


def test_weights_share_chunks():
    need()
    d = tmpdir()
    s1 = FwdServer(d, name="heavy").start()
    s2 = FwdServer(d, name="light").start()
    cfg = fwd_conf(d, [server_block(s1.port, "weight 60"), server_block(s2.port, "weight 20")],
                   "heartbeat_type none", count=120,
                   buf_body="flush_mode lazy\n    chunk_limit_records 1\n")
    p = run(["-c", cfg, "--oneshot"], timeout=120)
    assert p.returncode == 0, p.stderr
    # without acks logship is done once the bytes are in the sockets; the servers write what
    # they received a moment later (CI's fresh root once read 119 or fewer right at the exit)
    wait_until(lambda: len(data_msgs(s1)) + len(data_msgs(s2)) >= 120, 15,
               what="120 messages on the two servers")
    time.sleep(0.3)     # a duplicate would show up now
    n1, n2 = len(data_msgs(s1)), len(data_msgs(s2))
    assert n1 + n2 == 120, (n1, n2)
    # the weight array gives exactly 3:1 over each pass of it
    assert 84 <= n1 <= 96 and 24 <= n2 <= 36, (n1, n2)


def test_shared_key_and_user_handshake():
    need()
    d = tmpdir()
    srv = FwdServer(d, shared_key="s3cr3t", users={"alice": "pw1"}).start()
    sec = "<security>\n    self_hostname client.example\n    shared_key s3cr3t\n  </security>"
    cfg = fwd_conf(d, [server_block(srv.port, "username alice\n    password pw1")],
                   "require_ack_response true\n" + sec, count=4)
    p = run(["-c", cfg, "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    hs = [m for m in srv.messages() if "handshake" in m]
    assert hs and all(m["handshake"] for m in hs)
    ping = hs[0]["ping"]
    assert ping[0] == "PING" and ping[1] == "client.example" and ping[4] == "alice"
    assert sorted(seqs(data_msgs(srv))) == list(range(4))

    # a wrong key: refused by the server, nothing sent, the records stay in the buffer
    d2 = tmpdir()
    srv2 = FwdServer(d2, shared_key="s3cr3t", users={"alice": "pw1"}).start()
    bad = sec.replace("shared_key s3cr3t", "shared_key wrong")
    a = Agent(fwd_conf(d2, [server_block(srv2.port, "username alice\n    password pw1")],
                       "require_ack_response true\n  heartbeat_type none\n" + bad, count=4)).start()
    a.wait_log("authentication failed: shared_key mismatch", 30)
    assert data_msgs(srv2) == [] and chunk_files(d2)
    a.stop()
    # a wrong password
    d3 = tmpdir()
    srv3 = FwdServer(d3, shared_key="s3cr3t", users={"alice": "pw1"}).start()
    a = Agent(fwd_conf(d3, [server_block(srv3.port, "username alice\n    password nope")],
                       "require_ack_response true\n  heartbeat_type none\n" + sec, count=4)).start()
    a.wait_log("username/password mismatch", 30)
    assert data_msgs(srv3) == []
    a.stop()


def make_certs(d, name):
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca = f"{d}/{name}-ca.key", f"{d}/{name}-ca.crt"
    key, csr, crt = f"{d}/{name}.key", f"{d}/{name}.csr", f"{d}/{name}.crt"
    ext = lstest.write(f"{d}/{name}.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    sh = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
       "-days", "2", "-subj", f"/CN={name} test CA")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
       "/CN=127.0.0.1")
    sh("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
       "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def test_tls_verifies_the_ca_and_refuses_an_unknown_one():
    need()
    d = tmpdir()
    ca, crt, key = make_certs(d, "good")
    other_ca, _, _ = make_certs(d, "other")
    srv = FwdServer(d, tls=(crt, key)).start()
    cfg = fwd_conf(d, [server_block(srv.port)],
                   f"transport tls\n  tls_cert_path {ca}\n  require_ack_response true", count=3)
    p = run(["-c", cfg, "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted(seqs(data_msgs(srv))) == list(range(3))

    d2 = tmpdir()
    srv2 = FwdServer(d2, tls=(crt, key)).start()
    a = Agent(fwd_conf(d2, [server_block(srv2.port)],
                       f"transport tls\n  tls_cert_path {other_ca}\n  heartbeat_type none",
                       count=3)).start()
    a.wait_log("certificate is not trusted", 30)
    assert data_msgs(srv2) == [] and chunk_files(d2)
    a.stop()
    # by default the system's CAs are trusted, which do not include a test CA either
    d3 = tmpdir()
    srv3 = FwdServer(d3, tls=(crt, key)).start()
    a = Agent(fwd_conf(d3, [server_block(srv3.port)], "transport tls\n  heartbeat_type none",
                       count=3)).start()
    a.wait_log("certificate is not trusted", 30)
    assert data_msgs(srv3) == []
    a.stop()


def test_tls_without_acks_closes_only_after_the_server_read_everything():
    # Python's TLS server sends TLS 1.3 session tickets that out_forward never reads; closing
    # at once with them unread made the kernel send an RST, and chunks the server had not read
    # yet were lost though out_forward counted them delivered. Each chunk its own connection.
    need()
    d = tmpdir()
    ca, crt, key = make_certs(d, "good")
    srv = FwdServer(d, tls=(crt, key), mode="lateread").start()
    cfg = fwd_conf(d, [server_block(srv.port)],
                   f"transport tls\n  tls_cert_path {ca}\n  heartbeat_type none", count=40,
                   buf_body=FAST_BUF + "    chunk_limit_records 1\n")
    p = run(["-c", cfg, "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    wait_until(lambda: len(seqs(data_msgs(srv))) >= 40, 10, what="40 records at the server")
    assert sorted(seqs(data_msgs(srv))) == list(range(40))


def test_server_down_at_start_keeps_data_buffered_and_retries():
    need()
    d = tmpdir()
    srv = FwdServer(d)       # not started yet
    cfg = fwd_conf(d, [server_block(srv.port)], "require_ack_response true\n  heartbeat_type none",
                   count=30)
    a = Agent(cfg).start()
    a.wait_log(r"retry|failed to send chunk", 30)
    wait_until(lambda: chunk_files(d), 10, what="chunks in the file buffer")
    srv.start()
    wait_until(lambda: sorted(set(seqs(data_msgs(srv)))) == list(range(30)), 60,
               what="every record after the server came up")
    wait_until(lambda: not chunk_files(d), 30, what="buffer emptied")
    a.stop()


def test_kill9_mid_send_loses_nothing_and_resends_same_chunk_ids():
    need()
    d = tmpdir()
    srv = FwdServer(d, mode="withhold").start()
    cfg = fwd_conf(d, [server_block(srv.port)],
                   "require_ack_response true\n  ack_response_timeout 30\n  heartbeat_type none",
                   count=200, rate=400,
                   buf_body=FAST_BUF + "    chunk_limit_records 20\n    flush_thread_count 2\n")
    a = Agent(cfg).start()
    wait_until(lambda: len(data_msgs(srv)) >= 2, 30, what="chunks sent, acks withheld")
    before = {m["option"]["chunk"] for m in data_msgs(srv)}
    a.kill9()
    n_before = len(data_msgs(srv))
    srv.set_mode("ack")
    a.start()
    wait_until(lambda: sorted(set(seqs(data_msgs(srv)))) == list(range(200)), 60,
               what="every record after the restart")
    wait_until(lambda: not chunk_files(d), 30, what="buffer emptied")
    a.stop()
    ids_after = {m["option"]["chunk"] for m in data_msgs(srv)[n_before:]}
    # the chunks in flight at the kill came again with the ids they had
    assert before <= ids_after, (before, ids_after)
    by_id = {}
    for m in data_msgs(srv):
        by_id.setdefault(m["option"]["chunk"], set()).add(tuple(seqs([m])))
    assert all(len(v) == 1 for v in by_id.values()), "one id, one content"


def test_keepalive_reuses_one_connection():
    need()
    d = tmpdir()
    srv = FwdServer(d).start()
    cfg = fwd_conf(d, [server_block(srv.port)],
                   "require_ack_response true\n  keepalive true\n  heartbeat_type none", count=30,
                   buf_body="flush_mode lazy\n    chunk_limit_records 3\n")
    p = run(["-c", cfg, "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr
    msgs = data_msgs(srv)
    assert len(msgs) == 10 and sorted(seqs(msgs)) == list(range(30))
    assert len({m["peer"] for m in msgs}) == 1, "every chunk on one kept-alive connection"


def test_verify_connection_at_startup_refuses_to_start_without_a_server():
    need()
    d = tmpdir()
    cfg = fwd_conf(d, [server_block(lstest.free_port())], "verify_connection_at_startup true",
                   count=1)
    p = run(["-c", cfg], timeout=60)
    assert p.returncode != 0
    assert "verify_connection_at_startup" in p.stderr and "refused" in p.stderr, p.stderr[-2000:]


def test_config_errors_name_the_line():
    d = tmpdir()
    p = run(["-c", conf("<match **>\n  @type forward\n</match>\n", d), "--dry-run"])
    assert p.returncode != 0 and "at least one <server>" in p.stderr, p.stderr
    p = run(["-c", conf("<match **>\n  @type forward\n  <server>\n    port 1\n  </server>\n"
                        "</match>\n", d), "--dry-run"])
    assert p.returncode != 0 and "'host'" in p.stderr and ":3" in p.stderr, p.stderr
    p = run(["-c", conf("<match **>\n  @type forward\n  <server>\n    host 127.0.0.1\n  </server>\n"
                        "  <security>\n    shared_key k\n  </security>\n</match>\n", d), "--dry-run"])
    assert p.returncode != 0 and "self_hostname" in p.stderr, p.stderr


def test_secure_forward_output_to_secure_forward_input():
    # fluent-plugin-secure-forward on both ends, from the plugins' own parameters: the server
    # makes its certificate with a CA at start, the client trusts that CA and checks the
    # certificate names hostlabel (enable_strict_verification); a wrong hostlabel is refused
    import subprocess as sp
    d = tmpdir()
    sp.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", f"{d}/ca.key", "-out",
            f"{d}/ca.crt", "-days", "2", "-subj", "/CN=test-ca", "-passout", "pass:capw"],
           check=True, capture_output=True)
    port = lstest.free_port()
    rd = tmpdir()
    recv = Agent(conf(f"""
<source>
  @type secure_forward
  bind 127.0.0.1
  port {port}
  secure yes
  self_hostname receiver
  shared_key s3cret
  ca_cert_path {d}/ca.crt
  ca_private_key_path {d}/ca.key
  ca_private_key_passphrase capw
  generate_cert_common_name receiver.test
  chunk_id_file {rd}/ids
</source>
<match **>
  @type file
  path {rd}/out/app
  <format>
    @type json
  </format>
  <buffer []>
    flush_mode immediate
  </buffer>
</match>
""", rd)).start()
    recv.wait_log("logship started")
    for label, n, ack in (("receiver.test", 20, "true"), ("someone.else", 3, "false")):
        sd = tmpdir()
        p = run(["-c", conf(f"""
<source>
  @type sample
  tag sf.{n}
  count {n}
  rate 1000
  auto_increment_key seq
</source>
<match sf.**>
  @type secure_forward
  secure yes
  ca_cert_path {d}/ca.crt
  enable_strict_verification true
  self_hostname __HOSTNAME__-sender
  hostname edge1
  shared_key s3cret
  require_ack_response {ack}
  <server>
    host 127.0.0.1
    port {port}
    hostlabel {label}
  </server>
  <buffer>
    flush_mode immediate
    retry_max_times 1
    retry_wait 0.2
  </buffer>
</match>
""", sd), "--oneshot"], timeout=60)
        if label == "receiver.test":
            assert p.returncode == 0, p.stderr[-2000:]
        else:
            assert p.returncode != 0, p.stderr[-2000:]
            assert "receiver.test" in p.stderr or "certificate" in p.stderr, p.stderr[-2000:]
    def lines():
        return [l for f in glob.glob(f"{rd}/out/**", recursive=True) if os.path.isfile(f)
                for l in open(f) if l.strip()]
    wait_until(lambda: len(lines()) >= 20, what="20 records at the receiver")
    assert recv.stop() == 0, recv.log()
    seqs = sorted(json.loads(l)["seq"] for l in lines())
    assert seqs == list(range(20)), seqs
