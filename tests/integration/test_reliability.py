"""Crash reliability: kill -9 at random instants while nginx writes and rotates its log and
the sink goes up and down; after the last restart every request is delivered exactly once.

A real nginx serves a stream of requests with unique paths (a thread); logship tails the
access log (nginx parser, pos_file, file buffer) into
  - out_file (JSON lines), with the buffer's output failing in random windows
    (test_crash_loop_nginx_rotation_out_file), and
  - S3 (moto with IAM auth) behind the fault proxy (tests/lib/faultproxy.py), which is
    "down" (every request reset) in random windows (test_crash_loop_nginx_rotation_s3).
Each round starts logship, waits a random time (rotating the log with mv + reopen in some
rounds, and also while logship is down), then kills it with SIGKILL. The last run must
deliver everything: the delivered paths are compared with the sent ones (missing,
duplicated). CI: a few rounds; LONG=1: many rounds. SEED=n replays a run.
"""
import glob, gzip, json, os, random, threading, time

import lstest
from lstest import Agent, conf, tmpdir, wait_until
from nginx import Nginx
import relkit


class Sender(threading.Thread):
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
                p = f"/{self.prefix}/{i}"
                self.ngx.request(p, f"rel {i}")
                self.sent.append(p)
                i += 1
                time.sleep(self.pause)
        except Exception as e:  # noqa: BLE001
            self.error = e

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        assert self.error is None, self.error
        return self.sent


def _source(ngx, d):
    return f"""
<source>
  @type tail
  path {ngx.log}
  pos_file {d}/tail.pos
  tag access
  read_from_head true
  refresh_interval 1
  rotate_wait 1
  <parse>
    @type nginx
  </parse>
</source>"""


def _check(paths, sent, what):
    seen, dup = set(), []
    for p in paths:
        if p in seen:
            dup.append(p)
        seen.add(p)
    missing = [p for p in sent if p not in seen]
    extra = seen - set(sent)
    assert not dup and not missing and not extra, (
        f"{what}: sent {len(sent)}, delivered {len(paths)}: {len(dup)} duplicates (first "
        f"{dup[:3]}), {len(missing)} missing (first {missing[:3]}), {len(extra)} unknown")


def _crash_loop(ngx, d, agent, delivered, sink_down, sink_up, rounds, rnd, seed, what):
    s = Sender(ngx, "rel", pause=0.001)
    s.start()
    rotations = downs = 0
    try:
        for k in range(rounds):
            agent.start()
            if rnd.random() < 0.4:
                sink_down()
                downs += 1
            else:
                sink_up()
            time.sleep(rnd.uniform(0.1, 1.5))
            if rnd.random() < 0.4:
                ngx.rotate_rename(f".{k}")
                rotations += 1
                time.sleep(rnd.uniform(0.0, 0.4))
            agent.kill9()
            agent.out.close()
            agent.err.close()
            relkit_check_no_sanitizer(agent)
            if rnd.random() < 0.25:
                ngx.rotate_rename(f".down{k}")       # rotated while logship is down
                rotations += 1
    finally:
        sent = s.finish()
    sink_up()
    time.sleep(0.3)    # nginx writes its last lines
    agent.start()
    t0 = time.time()
    try:
        last, changed = -1, time.time()
        while time.time() - changed < 30:
            n = len(delivered())
            if n >= len(sent):
                time.sleep(1.5)     # a duplicate would show up now
                break
            if n != last:
                last, changed = n, time.time()
            time.sleep(0.5)
    finally:
        agent.stop()
    paths = delivered()
    try:
        _check(paths, sent, f"{what}, seed {seed}: {rounds} kill -9 rounds, {rotations} rotations, "
                            f"{downs} sink outages")
    except AssertionError:
        _diagnose(paths, sent, d, agent)
        raise
    print(f"    {what}: seed {seed}, {rounds} kills, {rotations} rotations, {downs} outages, "
          f"{len(sent)} requests exactly once (drained in {time.time() - t0:.1f}s)", flush=True)


def _ranges(nums):
    out, start, prev = [], None, None
    for n in sorted(nums):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append((start, prev))
            start = prev = n
    if start is not None:
        out.append((start, prev))
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in out)


def _diagnose(paths, sent, d, agent):
    """What CI needs to find a loss it cannot replay: which requests, where they were
    in the log, what every run said."""
    seen = set(paths)
    miss = [int(p.rsplit("/", 1)[1]) for p in sent if p not in seen]
    print(f"    missing requests: {_ranges(miss)}", flush=True)
    pos = os.path.join(d, "tail.pos")
    if os.path.exists(pos):
        print("    pos_file:\n" + "".join("      " + l for l in open(pos)), flush=True)
    for root, _, files in os.walk(os.path.join(d, "buf")):
        for f in sorted(files):
            pth = os.path.join(root, f)
            print(f"    buffer: {pth} {os.path.getsize(pth)} bytes", flush=True)
    for i in range(1, agent.n + 1):
        pth = os.path.join(agent.dir, f"{agent.name}.{i}.log")
        if not os.path.exists(pth):
            continue
        lines = [l for l in lstest.read(pth, "rb").decode("utf-8", "replace").splitlines()
                 if "[debug]" not in l]
        print(f"    run {i} log ({len(lines)} lines, last 25):", flush=True)
        for l in lines[-25:]:
            print("      " + l, flush=True)


def relkit_check_no_sanitizer(agent):
    lstest.check_sanitizer(agent.log(), "logship (killed round)")


def test_crash_loop_nginx_rotation_out_file():
    rounds = 40 if lstest.LONG else 6
    seed = int(os.environ.get("SEED", time.time()))
    rnd = random.Random(seed)
    ngx = Nginx().start()
    d = tmpdir()
    # the output fails in windows: a read-only bind mount over its directory (EROFS)
    out = os.path.join(d, "out")
    os.makedirs(out)
    c = conf(_source(ngx, d) + f"""
<match **>
  @type file
  path {out}/o
  <format>
    @type json
  </format>
  <buffer []>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3
    chunk_limit_records 500
    retry_wait 0.2
    retry_max_interval 1
    retry_forever true
  </buffer>
</match>""", d)
    a = Agent(c)
    state = {"down": False}

    def down():
        # a read-only bind mount over the output directory: out_file's writes fail (EROFS)
        if not state["down"]:
            try:
                relkit.bind_ro(out)
                state["down"] = True
            except lstest.Skip:
                pass

    def up():
        if state["down"]:
            relkit.unmount(out)
            state["down"] = False

    def delivered():
        got = []
        for f in glob.glob(os.path.join(out, "o*.log")):
            for line in lstest.read(f).splitlines():
                if line.strip():
                    got.append(json.loads(line)["path"])
        return got
    _crash_loop(ngx, d, a, delivered, down, up, rounds, rnd, seed, "nginx -> out_file")


def test_crash_loop_nginx_rotation_s3():
    relkit.need_s3()
    from s3server import S3Server
    from faultproxy import FaultProxy
    rounds = 30 if lstest.LONG else 5
    seed = int(os.environ.get("SEED", time.time()))
    rnd = random.Random(seed)
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    ngx = Nginx().start()
    d = tmpdir()
    c = conf(_source(ngx, d) + f"""
<match **>
  @type s3
  aws_key_id {srv.key}
  aws_sec_key {srv.secret}
  s3_bucket {srv.bucket}
  s3_endpoint {px.endpoint}
  force_path_style true
  path rel_
  s3_object_key_format %{{path}}%{{time_slice}}_%{{index}}.%{{file_extension}}
  http_stall_timeout 5
  <format>
    @type json
  </format>
  <buffer time>
    @type file
    path {d}/buf
    timekey 3600
    timekey_use_utc true
    flush_mode interval
    flush_interval 1
    chunk_limit_records 500
    retry_wait 0.3
    retry_max_interval 2
    retry_forever true
  </buffer>
</match>""", d)
    os.chmod(c, 0o600)
    a = Agent(c)
    state = {"rule": None}

    def down():
        px.clear()
        state["rule"] = px.add("reset", times=None)

    def up():
        px.clear()

    def delivered():
        got = []
        for o in srv.list_objects("rel_"):
            for line in gzip.decompress(srv.get_object(o["Key"])).decode().splitlines():
                if line.strip():
                    got.append(json.loads(line)["path"])
        return got
    _crash_loop(ngx, d, a, delivered, down, up, rounds, rnd, seed, "nginx -> S3 (with outages)")
