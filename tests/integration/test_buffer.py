"""The chunk buffer, driven end to end through the `fault` test output.

Covers the buffer's "done when" list: retry backoff (exponential, periodic,
capped) measured from the fault output's log of attempts, <secondary> after
retry_max_times with no record lost, retry exhaustion (backup/ in a daemon,
non-zero exit with the chunk kept in --oneshot), time slicing per hour in
UTC and in other zones, timekey_wait, bounded memory under a flood,
overflow_action block without loss, v0.12 flat parameters, recovery of a
file buffer after kill -9 with a torn tail, and kill -9 at random moments
while tail feeds out_file (LONG=1: 50 rounds).
"""
import glob, json, os, random, re, signal, subprocess, threading, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

T0 = 1704069000          # 2024-01-01 00:30:00 UTC

def attempts(path):
    """[(wall_time, chunk_id, n, records, result)] from the fault output's log."""
    out = []
    if not os.path.exists(path):
        return out
    for line in lstest.read(path).splitlines():
        t, cid, n, recs, res = line.split()
        out.append((float(t), cid, int(n), int(recs), res))
    return out

def json_seqs(path, key="seq"):
    if not os.path.exists(path):
        return []
    return [json.loads(l)[key] for l in lstest.read(path).splitlines() if l.strip()]

def oneshot(path, timeout=120, ok=True):
    p = run(["-c", path, "--oneshot"], timeout=timeout)
    if ok:
        assert p.returncode == 0, lstest.tail_text(p.stderr)
    return p

def fault_conf(d, fault_params, buffer_params, source=None, extra=""):
    source = source or """
<source>
  @type sample
  tag a
  count 1
</source>"""
    return conf(f"""{source}
<match **>
  @type fault
  path {d}/delivered
  attempts_path {d}/attempts
{fault_params}
  <format>
    @type json
  </format>
  <buffer>
{buffer_params}
  </buffer>
{extra}
</match>
""", d)

# ---- retries ----

def _gaps(d):
    a = attempts(os.path.join(d, "attempts"))
    return a, [a[i + 1][0] - a[i][0] for i in range(len(a) - 1)]

TICK = 0.2 + 0.1   # the buffer is polled every 0.2 s; allow scheduling noise

def test_retry_exponential_backoff():
    d = tmpdir()
    c = fault_conf(d, "  fail_times 4", """
    flush_mode immediate
    retry_type exponential_backoff
    retry_wait 0.5
    retry_exponential_backoff_base 2""")
    oneshot(c)
    a, gaps = _gaps(d)
    assert [x[4] for x in a] == ["fail"] * 4 + ["ok"], a
    assert len({x[1] for x in a}) == 1            # the same chunk every time
    for k, g in enumerate(gaps):
        w = 0.5 * 2 ** k
        # +-12.5% jitter (retry_randomize), plus the polling granularity
        assert 0.875 * w - 0.02 <= g <= 1.125 * w + TICK, (k, g, gaps)
    # growth: each wait is longer than the previous one even at the jitter extremes
    assert all(gaps[i + 1] > gaps[i] * 1.3 for i in range(len(gaps) - 1)), gaps
    assert json_seqs(os.path.join(d, "delivered"), "message") == ["sample"]

def test_retry_periodic_and_max_interval():
    d = tmpdir()
    c = fault_conf(d, "  fail_times 4", """
    flush_mode immediate
    retry_type periodic
    retry_wait 0.6""")
    oneshot(c)
    a, gaps = _gaps(d)
    assert len(a) == 5 and a[-1][4] == "ok", a
    for g in gaps:
        assert 0.875 * 0.6 - 0.02 <= g <= 1.125 * 0.6 + TICK, gaps
    d = tmpdir()
    c = fault_conf(d, "  fail_times 4", """
    flush_mode immediate
    retry_wait 0.4
    retry_max_interval 0.8
    retry_randomize false""")
    oneshot(c)
    a, gaps = _gaps(d)
    want = [0.4, 0.8, 0.8, 0.8]
    assert len(gaps) == 4, a
    for g, w in zip(gaps, want):
        assert w - 0.02 <= g <= w + TICK, (gaps, want)

def test_secondary_takes_over_after_retry_max_times():
    d = tmpdir()
    err = os.path.join(d, "err")
    n = 3000
    c = fault_conf(d, "  fail_times 1000000", """
    chunk_limit_records 500
    flush_interval 0.2
    retry_wait 0.1
    retry_max_times 2""", source=f"""
<source>
  @type sample
  tag a
  size 100
  count {n}
  auto_increment_key seq
</source>""", extra=f"""
  <secondary>
    @type secondary_file
    directory {err}
    basename dump.${{chunk_id}}
  </secondary>""")
    oneshot(c)
    a = attempts(os.path.join(d, "attempts"))
    per_chunk = {}
    for x in a:
        per_chunk.setdefault(x[1], []).append(x[4])
    # 1 try + retry_max_times retries on the primary, then the secondary
    assert per_chunk and all(v == ["fail"] * 3 for v in per_chunk.values()), per_chunk
    assert not os.path.exists(os.path.join(d, "delivered"))
    files = sorted(os.listdir(err))
    assert len(files) == len(per_chunk), (files, list(per_chunk))
    for cid in per_chunk:
        assert f"dump.{cid}.0" in files
    seqs = []
    for f in files:
        seqs += json_seqs(os.path.join(err, f))
    assert sorted(seqs) == list(range(n)), f"{len(seqs)} records, {len(set(seqs))} distinct"

def test_exhaustion_without_secondary_keeps_chunk_in_backup():
    d = tmpdir()
    buf = os.path.join(d, "buf")
    c = fault_conf(d, "  fail_times 1000000", f"""
    @type file
    path {buf}
    flush_interval 0.3
    retry_wait 0.1
    retry_max_times 1""", source="""
<source>
  @type sample
  tag a
  count 10
  rate 100
  auto_increment_key seq
</source>""")
    a = Agent(c).start()
    wait_until(lambda: glob.glob(os.path.join(buf, "backup", "*.chunk")), 20, what="backup chunk")
    a.wait_log(r"retries exhausted")
    a.stop()
    backups = glob.glob(os.path.join(buf, "backup", "*.chunk"))
    assert len(backups) == 1
    data = lstest.read(backups[0], "rb")
    assert data.startswith(b"LSCHUNK1")
    # the payload is in the frames as formatted: every record is there
    got = sorted(int(m) for m in re.findall(rb'"seq":(\d+)', data))
    assert got == list(range(10)), got
    assert not glob.glob(os.path.join(buf, "logship.*.chunk"))
    assert len(attempts(os.path.join(d, "attempts"))) == 2

def test_oneshot_exhaustion_exits_nonzero_and_keeps_the_chunk():
    d = tmpdir()
    buf = os.path.join(d, "buf")
    src = """
<source>
  @type sample
  tag a
  count 10
  auto_increment_key seq
</source>"""
    c = fault_conf(d, "  fail_times 1000000", f"""
    @type file
    path {buf}
    retry_wait 0.1
    retry_max_times 1""", source=src)
    p = oneshot(c, ok=False)
    assert p.returncode != 0, p.stderr
    assert "stay in the buffer" in p.stderr or "stays in the buffer" in p.stderr, p.stderr
    assert len(glob.glob(os.path.join(buf, "logship.q*.chunk"))) == 1, os.listdir(buf)
    assert not os.path.exists(os.path.join(d, "delivered"))
    # the next run (no input, output healthy) delivers what was kept
    c2 = fault_conf(d, "", f"""
    @type file
    path {buf}""", source="<system>\n  without_source true\n</system>")
    oneshot(c2)
    assert sorted(json_seqs(os.path.join(d, "delivered"))) == list(range(10))
    assert not glob.glob(os.path.join(buf, "logship.*"))

def test_unrecoverable_error_skips_retries():
    d = tmpdir()
    err = os.path.join(d, "err")
    c = fault_conf(d, "  fail_times 1\n  unrecoverable true", """
    flush_mode immediate
    retry_wait 5""", extra=f"""
  <secondary>
    @type secondary_file
    directory {err}
  </secondary>""")
    t0 = time.time()
    oneshot(c)
    assert time.time() - t0 < 4
    assert len(attempts(os.path.join(d, "attempts"))) == 1
    assert os.listdir(err) == ["dump.bin.0"]

# ---- time slicing ----

def _slice_conf(d, times, buffer_params, path_tmpl):
    recs = [{"t": t, "seq": i} for i, t in enumerate(times)]
    return conf(f"""
<source>
  @type sample
  tag a
  sample {json.dumps(recs)}
  count {len(recs)}
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>
<match **>
  @type file
  path {path_tmpl}
  <format>
    @type json
  </format>
  <buffer time>
{buffer_params}
  </buffer>
</match>
""", d)

def _files(d, pattern):
    out = {}
    for f in glob.glob(os.path.join(d, pattern)):
        out[os.path.basename(f)] = [json.loads(l) for l in lstest.read(f).splitlines()]
    return out

def test_time_slices_per_hour_utc():
    d = tmpdir()
    base = 1704067200   # 2024-01-01 00:00 UTC
    times = [base + h * 3600 + m * 60 for h in range(5) for m in (0, 17, 59)]
    random.Random(1).shuffle(times)
    c = _slice_conf(d, times, "    timekey 1h\n    timekey_use_utc true", f"{d}/o")
    oneshot(c)
    files = _files(d, "o.*")
    assert sorted(files) == [f"o.20240101{h:02d}_0.log" for h in range(5)], sorted(files)
    for name, recs in files.items():
        hour = int(name[10:12])
        assert len(recs) == 3
        for r in recs:
            assert base + hour * 3600 <= r["t"] < base + (hour + 1) * 3600, (name, r)

def test_time_slices_follow_the_zone():
    # 14:30Z and 15:30Z on Jan 1st: one UTC day, but 23:30 and 00:30 in Tokyo
    times = [1704119400, 1704123000]
    cases = [("timekey_use_utc true", ["o.20240101_0.log"]),
             ("timekey_zone +0900", ["o.20240101_0.log", "o.20240102_0.log"]),
             ("timekey_zone Asia/Tokyo", ["o.20240101_0.log", "o.20240102_0.log"]),
             ("timekey_zone -0500", ["o.20240101_0.log"])]
    for zone, want in cases:
        d = tmpdir()
        c = _slice_conf(d, times, f"    timekey 1d\n    {zone}", f"{d}/o")
        oneshot(c)
        files = _files(d, "o.*")
        assert sorted(files) == want, (zone, sorted(files))
        if len(want) == 2:
            assert [r["t"] for r in files[want[0]]] == [times[0]], zone
    # a half-hour zone moves the hour boundary: 00:10Z and 00:40Z are 05:40 and 06:10
    times = [1704067800, 1704069600]
    for zone, want in [("timekey_use_utc true", ["o.2024010100_0.log"]),
                       ("timekey_zone +0530", ["o.2024010105_0.log", "o.2024010106_0.log"])]:
        d = tmpdir()
        c = _slice_conf(d, times, f"    timekey 1h\n    {zone}", f"{d}/o")
        oneshot(c)
        assert sorted(_files(d, "o.*")) == want, (zone, sorted(_files(d, "o.*")))

def test_timekey_wait_is_respected():
    d = tmpdir()
    tk, wait = 2, 3
    c = conf(f"""
<source>
  @type sample
  tag a
  rate 20
  auto_increment_key seq
</source>
<match **>
  @type file
  path {d}/out/o.%Y%m%d%H%M%S
  <format>
    @type json
  </format>
  <buffer time>
    path {d}/buf
    timekey {tk}
    timekey_wait {wait}
    timekey_use_utc true
  </buffer>
</match>
""", d)
    a = Agent(c).start()
    seen = {}
    deadline = time.time() + 11
    while time.time() < deadline:
        for f in glob.glob(os.path.join(d, "out", "o.*")):
            seen.setdefault(os.path.basename(f), time.time())
        time.sleep(0.05)
    a.stop()
    assert len(seen) >= 2, seen
    import calendar
    for name, first_seen in seen.items():
        m = re.match(r"o\.(\d{14})_0\.log$", name)
        assert m, name
        start = calendar.timegm(time.strptime(m.group(1), "%Y%m%d%H%M%S"))
        mtime = os.stat(os.path.join(d, "out", name)).st_mtime
        assert start % tk == 0, name
        # never before the slice's end + timekey_wait, and not much later
        assert mtime >= start + tk + wait - 0.01, (name, mtime - start)
        assert first_seen <= start + tk + wait + 1.5, (name, first_seen - start)

# ---- limits and back-pressure ----

def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def test_memory_bounded_by_total_limit_size_under_flood():
    d = tmpdir()
    big = "x" * 200
    c = conf(f"""
<source>
  @type sample
  tag a
  rate 1000
  size 100
  sample {{"message": "{big}"}}
</source>
<match **>
  @type fault
  hang 3600
  <buffer>
    chunk_limit_size 256k
    total_limit_size 4m
    # above the memory buffer's own bound ((this + 1) chunks), so total_limit_size is what acts
    queued_chunks_limit_size 64
    flush_interval 0.1
  </buffer>
</match>
""", d)
    a = Agent(c).start()
    a.wait_log(r"logship started")
    samples = []
    t0 = time.time()
    while time.time() - t0 < 6:
        samples.append((time.time() - t0, _rss_kb(a.p.pid)))
        time.sleep(0.25)
    log = a.log()
    a.p.kill()
    a.p.wait()
    assert "buffer is full" in log, log[-2000:]
    late = [r for t, r in samples if t >= 2]
    mid = [r for t, r in samples if 1.5 <= t < 2.5]
    # without the limit the flood is ~25 MB/s: RSS would grow by >100 MB in 6 s
    assert max(late) - min(mid) < 8 * 1024, samples
    if not lstest.SANITIZE:
        assert max(r for _, r in samples) < 48 * 1024, samples

def test_memory_buffer_defaults_stay_small_under_flood():
    """With fluentd's defaults (8 MB chunks, 512 MB total) a fast input and a slow output
    would fill memory to 512 MB; logship's memory buffer holds the staged chunk and
    queued_chunks_limit_size queued ones, and the input waits."""
    d = tmpdir()
    big = "y" * 400
    c = conf(f"""
<source>
  @type sample
  tag a
  rate 1000
  size 200
  sample {{"message": "{big}"}}
</source>
<match **>
  @type fault
  hang 3600
  <buffer>
    flush_mode immediate
  </buffer>
</match>
""", d)
    a = Agent(c).start()
    a.wait_log(r"logship started")
    samples = []
    t0 = time.time()
    while time.time() - t0 < 8:
        samples.append((time.time() - t0, _rss_kb(a.p.pid)))
        time.sleep(0.25)
    log = a.log()
    a.p.kill()
    a.p.wait()
    assert "memory buffer is full" in log, log[-2000:]
    # two 8 MB chunks of data at most: far below the 512 MB fluentd would allow
    late = [r for t, r in samples if t >= 4]
    assert max(late) - min(r for t, r in samples if 2 <= t < 4) < 4 * 1024, samples
    if not lstest.SANITIZE:
        assert max(r for _, r in samples) < 48 * 1024, samples

def test_overflow_block_pauses_input_without_loss():
    d = tmpdir()
    n = 20000
    c = fault_conf(d, "  hang 0.2", """
    chunk_limit_size 64k
    total_limit_size 256k
    queued_chunks_limit_size 64
    overflow_action block
    flush_interval 0
    flush_thread_count 2""", source=f"""
<source>
  @type sample
  tag a
  size 200
  count {n}
  auto_increment_key seq
</source>""")
    p = oneshot(c, timeout=180)
    assert "pausing inputs" in p.stderr, p.stderr[-2000:]
    seqs = json_seqs(os.path.join(d, "delivered"))
    assert len(seqs) == n and sorted(seqs) == list(range(n)), f"{len(seqs)} / {len(set(seqs))}"

def test_async_output_drains_many_small_chunks_quickly():
    # each completed write starts the next queued chunk at once, not at the next 0.2 s tick
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag a
  count 3000
  size 100
  auto_increment_key seq
</source>
<match **>
  @type file
  path {d}/out/o
  <format>
    @type json
  </format>
  <buffer []>
    @type memory
    chunk_limit_records 10
  </buffer>
</match>
""", d)
    t0 = time.time()
    oneshot(c)
    took = time.time() - t0
    files = glob.glob(os.path.join(d, "out", "o_*.log"))
    assert len(files) == 300, len(files)
    seqs = sorted(s for f in files for s in json_seqs(f))
    assert seqs == list(range(3000))
    assert took < 20, f"300 chunks took {took:.1f}s"

# ---- v0.12 flat parameters ----

def test_v012_flat_buffer_parameters():
    d = tmpdir()
    base = 1704067200
    recs = [{"t": base + h * 3600 + i, "seq": h * 40 + i, "pad": "p" * 40} for h in range(3)
            for i in range(40)]
    c = conf(f"""
<source>
  @type sample
  tag a
  sample {json.dumps(recs)}
  count {len(recs)}
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>
<match **>
  type file
  path {d}/out/app
  buffer_type file
  buffer_path {d}/buf/app.*
  buffer_chunk_limit 2k
  time_slice_format %Y%m%d%H
  flush_interval 1s
  utc
  format json
</match>
""", d)
    oneshot(c)
    # the buffer used buffer_path, not the output's path
    assert os.path.isdir(os.path.join(d, "buf")) and not os.path.exists(os.path.join(d, "out", "app"))
    files = sorted(os.listdir(os.path.join(d, "out")))
    hours = {}
    for f in files:
        m = re.match(r"app\.(2024010\d{3})_(\d+)\.log$", f)
        assert m, files
        hours.setdefault(m.group(1), []).append(int(m.group(2)))
        size = os.path.getsize(os.path.join(d, "out", f))
        assert size <= 2048 + 120, (f, size)
        for r in (json.loads(l) for l in lstest.read(os.path.join(d, "out", f)).splitlines()):
            assert r["t"] // 3600 == base // 3600 + int(m.group(1)[-2:]), (f, r)
    assert sorted(hours) == ["2024010100", "2024010101", "2024010102"], files
    # 40 records of ~110 bytes per hour do not fit in one 2k chunk
    assert all(len(v) >= 2 and sorted(v) == list(range(len(v))) for v in hours.values()), hours

def test_v012_flush_interval_flushes_the_open_slice():
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag a
  rate 20
</source>
<match **>
  @type file
  path {d}/out/app
  buffer_type file
  buffer_path {d}/buf/app.*
  time_slice_format %Y%m%d
  time_slice_wait 10m
  flush_interval 1s
  utc
</match>
""", d)
    a = Agent(c).start()
    # the day is still open, yet flush_interval writes it out every second (v0.12 semantics)
    wait_until(lambda: len(glob.glob(os.path.join(d, "out", "app.*_*.log"))) >= 3, 15,
               what="three flushes of the open slice")
    a.stop()

# ---- crash recovery ----

def test_file_buffer_recovers_after_kill9_with_torn_tail():
    d = tmpdir()
    buf = os.path.join(d, "buf")
    n = 50
    c = fault_conf(d, "", f"""
    @type file
    path {buf}
    flush_interval 1h""", source=f"""
<source>
  @type sample
  tag a
  rate 200
  count {n}
  auto_increment_key seq
</source>""")
    a = Agent(c).start()

    def complete():
        ch = glob.glob(os.path.join(buf, "logship.b*.chunk"))
        return ch if ch and lstest.read(ch[0], "rb").count(b'"seq":') == n else None
    chunk = wait_until(complete, 20, what="all records in the chunk file")[0]
    a.kill9()
    # a frame torn by the crash: a header promising more bytes than exist
    with open(chunk, "ab") as f:
        f.write(b"LSFR\x00\x10\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00ABCD{\"seq\":999")
    c2 = fault_conf(d, "", f"""
    @type file
    path {buf}""", source="<system>\n  without_source true\n</system>")
    p = oneshot(c2)
    assert "torn tail" in p.stderr, p.stderr
    seqs = json_seqs(os.path.join(d, "delivered"))
    assert sorted(seqs) == list(range(n)), seqs

def _have_plugin(kind, name):
    p = run(["--list-plugins"])
    return re.search(rf"^{kind}\s+{name}\b", p.stdout, re.M) is not None

def test_kill9_at_random_moments_tail_to_out_file_exactly_once():
    if not _have_plugin("input", "tail"):
        raise lstest.Skip("in_tail is not built yet")
    rounds = 50 if lstest.LONG else 4
    seed = int(os.environ.get("SEED", time.time()))
    rnd = random.Random(seed)
    d = tmpdir()
    inp = os.path.join(d, "in.log")
    write(inp, "")
    c = conf(f"""
<source>
  @type tail
  path {inp}
  pos_file {d}/in.pos
  tag t
  read_from_head true
  refresh_interval 1
  <parse>
    @type none
  </parse>
</source>
<match **>
  @type file
  path {d}/out/o
  <format>
    @type single_value
  </format>
  <buffer []>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3
    chunk_limit_records 700
  </buffer>
</match>
""", d)
    stop = threading.Event()
    written = [0]

    def writer():
        with open(inp, "a") as f:
            while not stop.is_set():
                burst = rnd.randint(1, 200)
                f.write("".join(f"line {written[0] + i} {'z' * (i % 50)}\n" for i in range(burst)))
                f.flush()
                written[0] += burst
                time.sleep(rnd.uniform(0.005, 0.05))
    th = threading.Thread(target=writer)
    th.start()
    a = Agent(c)
    try:
        for _ in range(rounds):
            a.start()
            time.sleep(rnd.uniform(0.05, 1.5))
            a.kill9()
            a.out.close()
            a.err.close()
    finally:
        stop.set()
        th.join()
    total = written[0]
    a.start()

    def delivered():
        got = []
        for f in glob.glob(os.path.join(d, "out", "o_*.log")):
            got += lstest.read(f).splitlines()
        return got
    try:
        # wait while the backlog drains (it keeps growing); give up after 15 s without progress
        last, last_change = -1, time.time()
        while time.time() - last_change < 15:
            n = len(delivered())
            if n >= total:
                time.sleep(1.0)   # anything extra (a duplicate) would show up now
                break
            if n != last:
                last, last_change = n, time.time()
            time.sleep(0.2)
    finally:
        a.stop()
    lines = delivered()
    nums = [int(l.split()[1]) for l in lines]
    dup = len(nums) - len(set(nums))
    missing = set(range(total)) - set(nums)
    assert dup == 0 and not missing, (f"seed {seed}: {rounds} kills, {total} lines, "
                                      f"{dup} duplicates, {len(missing)} missing "
                                      f"(first {sorted(missing)[:5]})")
    print(f"    crash loop: seed {seed}, {rounds} kill -9 rounds, {total} lines, exactly once",
          flush=True)
