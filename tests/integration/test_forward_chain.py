"""The fleet layout end to end: app (Debian's python3-fluent-logger) -> logship edge (in_forward
-> out_forward, file buffer, acks, shared_key) -> logship aggregator (in_forward -> out_s3 on
moto), with kill -9 of the edge and of the aggregator at random instants, acks lost and
connections reset between them: every record in S3 exactly once. Plus the conf/ fleet examples run unchanged (edge -> aggregator).

fluent-logger sends no chunk ids and reads no acks, so what it wrote into a socket of an edge
that dies is gone (its promise, at-most-once): the edge is killed only while the app is not
sending; its records are durable once the edge's in_forward has emitted them (monitor_agent),
since the input commits the buffers in the same loop pass. Between the two logship hosts, every
kill is at a random instant.
"""
import gzip, json, os, random, socket, subprocess, threading, time
import lstest, relkit
from lstest import Agent, conf, tmpdir, wait_until
from fwdserver import _have_msgpack

SECRET = "fleet-secret"


def need():
    if not _have_msgpack():
        raise lstest.Skip("/usr/bin/python3 has no msgpack")
    if subprocess.run(["/usr/bin/python3", "-c", "import fluent.sender"],
                      capture_output=True).returncode != 0:
        raise lstest.Skip("python3-fluent-logger is not installed")
    relkit.need_s3()


def app_send(port, start, n, tag="app.web"):
    """fluent-logger in /usr/bin/python3: n records seq start.. to the edge; fails on any error."""
    code = f"""
import sys, time
from fluent import sender
s = sender.FluentSender("{tag.split('.')[0]}", host="127.0.0.1", port={port}, timeout=5,
                        nanosecond_precision=True)
for i in range({start}, {start + n}):
    if not s.emit("{tag.split('.', 1)[1]}", {{"seq": i, "msg": "record %d " % i + "x" * 200}}):
        print("emit failed:", s.last_error, file=sys.stderr); sys.exit(1)
    if i % 200 == 0:
        time.sleep(0.05)
s.close()
"""
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr


def emitted(mon_port):
    try:
        st, body = relkit.http_get(mon_port, "/api/plugins.json")
    except OSError:
        return -1
    for pl in json.loads(body)["plugins"]:
        if pl.get("type") == "forward" and pl.get("plugin_category") == "input":
            return pl.get("emit_records", 0)
    return -1


def s3_seqs(srv):
    out = []
    for o in srv.list_objects("fleet/"):
        for line in gzip.decompress(srv.get_object(o["Key"])).decode().splitlines():
            if line.strip():
                out.append(json.loads(line)["seq"])
    return out


class AckEater:
    """A TCP proxy between the edge and the aggregator. mode "pass" relays both ways; "eat"
    swallows what the aggregator answers after the handshake (its acks: the records are durable there, the edge
    never hears so and sends the chunk again); "reset" closes every connection at once."""

    def __init__(self, target_port):
        self.target = target_port
        self.mode = "pass"
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self.eaten = 0
        threading.Thread(target=self._accept, daemon=True).start()
        lstest.on_cleanup(self.close)

    def close(self):
        self.ls.close()
        self.reset()

    def reset(self):
        for c in list(self.conns):
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                c.close()
            except OSError:
                pass
        self.conns.clear()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), 2)
            except OSError:
                c.close()
                continue
            self.conns += [c, u]
            threading.Thread(target=self._pipe, args=(c, u, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, True), daemon=True).start()

    def _pipe(self, a, b, answers):
        n = 0
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                n += 1
                # the first two answers are the handshake's HELO and PONG; then come acks
                if answers and n > 2 and self.mode == "eat":
                    self.eaten += 1
                    continue
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.close()
            except OSError:
                pass


def edge_conf(d, port, agg_port, mon_port):
    return conf(f"""
<source>
  @type forward
  bind 127.0.0.1
  port {port}
  chunk_id_file {d}/edge.chunk_ids
</source>
<source>
  @type monitor_agent
  port {mon_port}
</source>
<match app.**>
  @type forward
  require_ack_response true
  ack_response_timeout 1
  heartbeat_interval 0.5
  hard_timeout 5
  recover_wait 1
  compress gzip
  <server>
    host 127.0.0.1
    port {agg_port}
  </server>
  <security>
    self_hostname edge.test
    shared_key {SECRET}
  </security>
  <buffer tag>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3
    chunk_limit_records 300
    flush_thread_count 2
    retry_wait 0.3
    retry_max_interval 1
    retry_forever true
  </buffer>
</match>
""", d, "edge.conf")


def agg_conf(d, port, srv):
    return conf(f"""
<source>
  @type forward
  bind 127.0.0.1
  port {port}
  chunk_id_file {d}/agg.chunk_ids
  <security>
    self_hostname aggregator.test
    shared_key {SECRET}
  </security>
</source>
<match app.**>
  @type s3
  aws_key_id {srv.key}
  aws_sec_key {srv.secret}
  s3_bucket {srv.bucket}
  s3_endpoint {srv.endpoint}
  force_path_style true
  path fleet/
  s3_object_key_format %{{path}}%{{time_slice}}_%{{index}}.%{{file_extension}}
  <format>
    @type json
  </format>
  <buffer tag,time>
    @type file
    path {d}/buf
    timekey 3600
    timekey_use_utc true
    flush_mode interval
    flush_interval 0.5
    retry_wait 0.3
    retry_max_interval 1
    retry_forever true
  </buffer>
</match>
""", d, "agg.conf")


def test_app_edge_aggregator_s3_exactly_once_across_kill9():
    need()
    from s3server import S3Server
    srv = S3Server.start()
    lstest.on_cleanup(srv.stop)
    rnd = random.Random(int(os.environ.get("CHAIN_SEED", "12")))
    de, da = tmpdir("edge-"), tmpdir("agg-")
    p_edge, p_agg, p_mon = lstest.free_port(), lstest.free_port(), lstest.free_port()
    px = AckEater(p_agg)
    edge = Agent(edge_conf(de, p_edge, px.port, p_mon), name="edge").start()
    agg = Agent(agg_conf(da, p_agg, srv), name="agg").start()
    # the aggregator's start waits for out_s3's start-up check against moto_server, whose
    # first answers in a fresh root (no bytecode cache) took over 20 s once in CI
    edge.wait_log("logship started", timeout=60)
    agg.wait_log("logship started", timeout=60)
    total, kills = 0, {"edge": 0, "agg": 0}
    since = [0]     # records sent to the edge since its last start (its counter's zero)

    def kill_restart(a, name):
        a.kill9()
        kills[name] += 1
        a.start()
        if name == "edge":
            since[0] = 0

    for _ in range(3):
        n = 2000
        # the app sends while the aggregator dies at random instants
        import threading
        th = threading.Thread(target=app_send, args=(p_edge, total, n))
        th.start()
        while th.is_alive():
            time.sleep(rnd.uniform(0.2, 1.2))
            if th.is_alive():
                kill_restart(agg, "agg")
        th.join()
        total += n
        since[0] += n
        wait_until(lambda: emitted(p_mon) >= since[0], 30, what=f"edge durable {total}")
        # both logship sides die at random instants while chunks travel between them, and
        # the network loses acks (the aggregator has the records; the edge sends them again)
        # or resets connections
        for act in rnd.sample(["edge", "agg", "eat", "reset"], 4):
            time.sleep(rnd.uniform(0.05, 0.8))
            if act == "eat":
                px.mode = "eat"
                time.sleep(rnd.uniform(1.5, 3))
                px.mode = "pass"
            elif act == "reset":
                px.reset()
            else:
                kill_restart(edge if act == "edge" else agg, act)
                if act == "edge":
                    edge.wait_log("logship started", 20)
    # the random windows above may all miss a chunk in flight: one more batch goes out while
    # the network loses the aggregator's acks, until at least one ack is lost, so the
    # retransmission of a chunk the aggregator already holds is always exercised
    px.mode = "eat"
    app_send(p_edge, total, 200)
    total += 200
    wait_until(lambda: px.eaten > 0, 60, what="an ack lost on the way to the edge")
    px.mode = "pass"
    wait_until(lambda: len(set(s3_seqs(srv))) >= total, 180, 1.0,
               what=f"{total} records in S3")
    edge_buf = os.path.join(de, "buf")
    wait_until(lambda: not [f for f in os.listdir(edge_buf) if f.startswith("buffer.")], 60,
               what="the edge's buffer emptied")
    edge.stop()
    agg.stop()
    got = s3_seqs(srv)
    dup = len(got) - len(set(got))
    assert sorted(set(got)) == list(range(total)), "lost records"
    assert dup == 0, f"{dup} records twice in S3"
    print(f"    {total} records app -> edge -> aggregator -> S3 exactly once; kill -9: "
          f"edge {kills['edge']}, aggregator {kills['agg']}; {px.eaten} answers lost",
          flush=True)


def test_fleet_examples_run_unchanged():
    """conf/forward-edge.conf -> conf/forward-aggregator.conf -> S3, set only through their ENV."""
    need()
    import signal
    from s3server import S3Server
    srv = S3Server.start()
    lstest.on_cleanup(srv.stop)
    de, da = tmpdir("edge-"), tmpdir("agg-")
    p_edge, p_agg = lstest.free_port(), lstest.free_port()
    common = dict(AGGREGATOR_PORT=str(p_agg), FORWARD_SHARED_KEY="k3y", FLUSH_INTERVAL="1s")
    agg_env = dict(os.environ, LOGSHIP_STATE_DIR=da, S3_ENDPOINT=srv.endpoint, S3_BUCKET=srv.bucket,
                   S3_REGION="us-east-1", S3_FORCE_PATH_STYLE="true", AWS_ACCESS_KEY_ID=srv.key,
                   AWS_SECRET_ACCESS_KEY=srv.secret, **common)
    edge_env = dict(os.environ, LOGSHIP_STATE_DIR=de, EDGE_PORT=str(p_edge),
                    AGGREGATOR_HOST="127.0.0.1", **common)
    agg = Agent(os.path.join(lstest.ROOT, "conf", "forward-aggregator.conf"), env=agg_env,
                name="agg")
    agg.dir = da
    agg.start()
    edge = Agent(os.path.join(lstest.ROOT, "conf", "forward-edge.conf"), env=edge_env, name="edge")
    edge.dir = de
    edge.start()
    edge.wait_log("logship started")
    agg.wait_log("logship started")
    app_send(p_edge, 0, 500)

    def in_s3():
        agg.signal(signal.SIGUSR1)      # the hourly slice would wait for its hour: flush now
        seqs = []
        for o in srv.list_objects("apps/app.web/"):
            for line in gzip.decompress(srv.get_object(o["Key"])).decode().splitlines():
                if line.strip():
                    seqs.append(json.loads(line.split("\t", 2)[2])["seq"])
        return sorted(seqs) == list(range(500))
    wait_until(in_s3, 60, 1.0, what="500 records in S3 through the example configurations")
    edge.stop()
    agg.stop()
