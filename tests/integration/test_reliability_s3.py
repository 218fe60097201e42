"""Object store faults over a long-ish run: a mix of faults, then an outage, then recovery.

logship tails a file that a writer thread keeps appending to, into S3 (moto with IAM auth)
behind the fault proxy (tests/lib/faultproxy.py). Phase 1 injects a mix of faults on
uploads (503 SlowDown, 500, connection resets, stalls, a skewed clock, an answer that
never arrives after S3 stored the object); phase 2 is an outage (every request reset:
20 s in CI, 3 minutes with LONG=1) while input keeps coming; phase 3 the store is back.
Checked: every line is in S3 exactly once; RSS, sampled every 0.5 s, stays bounded
during the outage (the file buffer holds the backlog, not memory); the retry lines in the
log show the wait growing (exponential backoff up to retry_max_interval), not a tight loop.
The fault mix of phase 1 runs again with store_as zstd and lzma2: retries and answers lost
after S3 stored an object stay exactly once whatever compresses the payload.
"""
import gzip, json, os, re, subprocess, threading, time

import lstest
from lstest import Agent, conf, tmpdir, wait_until
import relkit


# store_as -> decompress an object's bytes
UNPACK = {
    "gzip": gzip.decompress,
    "zstd": lambda b: subprocess.run(["zstd", "-q", "-dc"], input=b, capture_output=True,
                                     check=True).stdout,
    "lzma2": lambda b: subprocess.run(["xz", "-q", "-dc"], input=b, capture_output=True,
                                      check=True).stdout,
}


def test_faults_then_outage_nothing_lost_memory_bounded_backoff():
    faults_then_outage("gzip", 180 if lstest.LONG else 20)


def test_fault_mix_exactly_once_with_zstd_and_xz():
    for store in ("zstd", "lzma2"):
        faults_then_outage(store, 0)


def faults_then_outage(store, outage):
    """Phase 1, then phase 2 and its checks of memory and backoff when outage > 0."""
    relkit.need_s3()
    from s3server import S3Server
    from faultproxy import FaultProxy
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    d = tmpdir()
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    c = conf(relkit.tail_source(inp, d) + f"""
<match **>
  @type s3
  aws_key_id {srv.key}
  aws_sec_key {srv.secret}
  s3_bucket {srv.bucket}
  s3_endpoint {px.endpoint}
  force_path_style true
  path rs3_
  store_as {store}
  s3_object_key_format %{{path}}%{{time_slice}}_%{{index}}.%{{file_extension}}
  http_stall_timeout 3
  <format>
    @type single_value
  </format>
  <buffer time>
    @type file
    path {d}/buf
    timekey 3600
    timekey_use_utc true
    flush_mode interval
    flush_interval 1
    chunk_limit_size 256k
    retry_wait 0.5
    retry_max_interval 8
    retry_forever true
  </buffer>
</match>""", d)
    os.chmod(c, 0o600)
    stop = threading.Event()
    keys = []

    def writer():
        i = 0
        while not stop.is_set():
            keys.extend(relkit.write_lines(inp, "R", i, 200, pad=100))
            i += 200
            time.sleep(0.1)       # ~2000 lines (~230 KB) a second
    th = threading.Thread(target=writer, daemon=True)
    a = Agent(c).start()
    th.start()
    try:
        # phase 1: a mix of faults on uploads
        for action, kw in (("503", {}), ("500", {}), ("reset", {}), ("stall", {"seconds": 10}),
                           ("skew", {"seconds": 3600}), ("drop", {}), ("503", {"times": 3}),
                           ("hold", {"seconds": 10})):
            px.add(action, method="PUT", **kw)
        time.sleep(12)
        assert a.alive(), lstest.tail_text(a.log(), 30)
        # phase 2: outage, input keeps coming; sample RSS
        px.clear()
        if outage:
            px.add("reset", times=None)
        t_out = time.time()
        rss = []
        while time.time() - t_out < outage:
            rss.append(relkit.rss_kb(a.p.pid))
            time.sleep(0.5)
        # phase 3: back
        px.clear()
        time.sleep(2)
    finally:
        stop.set()
        th.join(5)
    want = set(keys)

    def delivered():
        got = []
        for o in srv.list_objects("rs3_"):
            got += UNPACK[store](srv.get_object(o["Key"])).decode().splitlines()
        return got
    wait_until(lambda: want <= set(relkit.line_keys(delivered())), 120, 1.0,
               what=f"{len(want)} lines in S3")
    time.sleep(2)
    log = a.log()
    a.stop()
    relkit.check_exactly_once(delivered(), keys, f"store_as {store}: S3 faults + {outage}s outage")
    if not outage:
        print(f"    store_as {store}: {len(keys)} lines exactly once through the fault mix",
              flush=True)
        return

    # memory: the backlog grew by ~230 KB/s * outage in the file buffer; RSS must not follow
    backlog_kb = 230 * outage
    grow = max(rss) - rss[0]
    assert grow < 32 * 1024 and grow < backlog_kb / 2, \
        f"RSS grew {grow} KB during a {outage}s outage (backlog ~{backlog_kb} KB): {rss[::10]}"

    # backoff: the waits announced during the outage grow, and reach the cap
    waits = [float(m.group(1)) for m in re.finditer(r"failed to flush chunk \S+ \(retry \d+ in "
                                                    r"([0-9.]+)s\)", log)]
    assert len(waits) >= 3, lstest.tail_text(log, 30)
    assert max(waits) >= 4.0, f"retry waits never grew: {waits[:30]}"
    assert max(waits) <= 8 * 1.5 + 0.5, f"retry wait beyond retry_max_interval: {max(waits)}"
    attempts = len(waits)
    # a tight loop would try hundreds of times; backoff tries about outage / 8 s (+ the ramp)
    assert attempts < outage / 2 + 30, f"{attempts} failed attempts in a {outage}s outage"
    print(f"    outage {outage}s: RSS {rss[0]}->{max(rss)} KB, {len(keys)} lines exactly once, "
          f"{attempts} retry lines, waits up to {max(waits)}s", flush=True)
