#!/usr/bin/env python3
"""make bench: logship's nginx -> JSON -> hourly gzip chunks pipeline against the physical floor.

    LOGSHIP=build/logship python3 tests/bench/bench.py [--size 500M] [--seed 1] [--stages ...]

One run measures everything, so the ratios compare numbers taken on the same
machine state:

  floor rows   `cat log > /dev/null` (reading the input) and the real
               `gzip -6` over the JSON lines logship produces from the log
               (the unavoidable cost of the job: every byte must be
               compressed once);
  stage rows   logship --oneshot end to end from the same log: tail
               (read_from_head) -> nginx parser -> into null; into out_file
               as JSON text and as gzip (hourly <buffer time> chunks, file
               buffer); into out_file as Parquet (nginx schema, zstd pages;
               also its bytes and an hour's count-by-status query read by
               DuckDB's profiler, against the gzip JSON); into out_s3 (moto with IAM auth, tests/lib/s3server.py)
               when `@type s3` is registered, else "n/a"; and out_file gzip
               with the default (memory) buffer, to show its memory use, and
               out_s3 with its default (memory) buffer; out_s3 with store_as zstd
               (level 3) and lzma2 (xz preset 0, fluent-plugin-s3's -qf0), beside
               the real `zstd -3` and `xz -0` over the same JSON lines;
  forward      one ~1 KB record per KB of input log (its nginx lines' fields, the line and
               the lines after it), sent by tests/bench/fwd_client.py under Debian's python3
               (python3-msgpack) as PackedForward requests of 1000 entries, each ack awaited,
               into in_forward -> file buffer -> gzip -> S3; the agent is stopped with SIGTERM
               after the last ack (flush_at_shutdown) and every record is counted back from
               the objects. Reported beside the table, per record and per record byte, with an
               idle listener's CPU over 10 s and RSS, with no client and with 1,000 idle ones;
  many-files   a writer appends 5,000 lines/s in all, one write() per line, spread over 500
               files matched by a glob, then the same into one file: logship's CPU per line
               (/proc/PID/stat) once its pos_file shows every line read; and an agent following
               10,000 idle files: CPU over 10 s and RSS (the soft fd limit is raised to the hard
               one for it);
  idle RSS     VmRSS of an agent following an idle file, and of any helper it runs, once
               start-up settles (logship-http, which runs the HTTP requests, exits 10 s
               after the last one).

CPU is user+sys of the logship process and the logship-http helpers it ran and reaped (wait4
rusage, taken by runstat.c), so the S3 server's own work is not counted; peak RSS is the larger
of ru_maxrss and the sampled resident memory of logship and its helper together (pages they
share counted once; see run_measured). "CPU s/GB" is per GB (10^9
bytes) of *input log* for every row, the gzip floor included, so rows
compare directly; "x gzip" is a row's CPU over the gzip -6 floor's CPU;
"stored" is the bytes a row wrote (files or objects). Every stage but null
is checked: the records delivered must equal the lines generated, and each
S3 object must be one gzip member, zstd frame or xz stream.

Lines fluentd's nginx expression rejects (none in the default log; --escaped-quotes P makes P%
of them carry \\" in the user agent) are counted with the same expression in Python and
reported; every stage is checked against the lines accepted. The s3-cores rows run the S3 job
pinned with taskset to one CPU and to two, taking turns --repeat times, and report the ratio of
the least wall times beside the load average seen (other work on the machine skews wall time,
not the CPU columns; moto_server is not pinned). Peak and
idle RSS are compared with the README's figures (32 MB and 8 MB).
"""
import argparse, gzip, lzma, os, re, shutil, signal, subprocess, sys, tempfile, time, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import gen_nginx  # noqa: E402

LOGSHIP = os.environ.get("LOGSHIP", os.path.join(ROOT, "build", "logship"))
GB = 1e9
MB = 1e6


class Result:
    def __init__(self, name, cpu=None, wall=None, rss_kb=None, note="", stored=None):
        self.name = name
        self.stored = stored
        self.cpu = cpu
        self.wall = wall
        self.rss_kb = rss_kb
        self.note = note
        self.peer_cpu = None   # CPU s the S3 server (moto) used during one run


RUNSTAT = None

# fluentd's nginx expression as plugins/parser_nginx/nginx.c compiles it, in Python's syntax:
# the lines it rejects are not delivered, so every stage is checked against the lines it accepts
NGINX_RE = (rb'^(?P<remote>[^ ]*) (?P<host>[^ ]*) (?P<user>[^ ]*) \[(?P<time>[^\]]*)\] '
            rb'"(?P<method>\S+)(?: +(?P<path>[^\"]*?)(?: +\S*)?)?" (?P<code>[^ ]*) (?P<size>[^ ]*)'
            rb'(?: "(?P<referer>[^\"]*)" "(?P<agent>[^\"]*)"'
            rb'(?:\s+\"?(?P<http_x_forwarded_for>[^\"]*)\"?)?)?$')


def count_accepted(log):
    """Lines of log that fluentd's nginx expression (NGINX_RE) matches."""
    import re
    match = re.compile(NGINX_RE).match
    n = 0
    with open(log, "rb") as f:
        for ln in f:
            if match(ln.rstrip(b"\n")):
                n += 1
    return n


def build_runstat(cache):
    """Compile runstat.c (see its comment: why not os.wait4 from Python) into the cache dir."""
    global RUNSTAT
    src = os.path.join(HERE, "runstat.c")
    exe = os.path.join(cache, "runstat")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", exe, src], check=True)
    RUNSTAT = exe


def tree_pids(pid):
    """pid and its descendants (logship and its logship-http helper)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


ZERO_BLOCK = bytes(4096)
PFN_MASK = (1 << 55) - 1


def resident_pfns(pid):
    """Physical frame numbers of pid's resident pages (/proc/PID/pagemap; needs root, else
    None). Pages logship and logship-http share (libc, libcrypto text...) are one frame."""
    pfns = set()
    try:
        maps = open("/proc/%d/maps" % pid).read().splitlines()
        with open("/proc/%d/pagemap" % pid, "rb") as pm:
            for ln in maps:
                lo, hi = (int(x, 16) for x in ln.split()[0].split("-"))
                if ln.endswith("[vsyscall]"):
                    continue
                pm.seek(lo // 4096 * 8)
                data = memoryview(pm.read((hi - lo) // 4096 * 8))
                # most of the address space is reserved, never touched (a malloc arena's
                # 64 MiB, thread stacks): its entries are zero, skipped 512 pages at a time
                # (about 4.6 ms a walk still; what cut the sampler's CPU is walking less
                # often, in run_measured)
                for off in range(0, len(data), len(ZERO_BLOCK)):
                    blk = data[off:off + len(ZERO_BLOCK)]
                    if blk == ZERO_BLOCK[:len(blk)]:
                        continue
                    pfns.update(e & PFN_MASK for e in blk.cast("Q") if e >> 63)
    except OSError:
        return None
    if pfns and pfns <= {0}:
        return None          # not root: the kernel hides frame numbers
    return pfns


def tree_union_kb(pids):
    """Resident memory of a process tree with shared frames counted once (None if unknown)."""
    allp = set()
    for p in pids:
        f = resident_pfns(p)
        if f is None:
            return None
        allp |= f
    return len(allp) * 4


def tree_rss_kb(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
        except OSError:
            pass
    return total


PARTS_PEAK = {}   # peak VmRSS per program name (logship, logship-http) over the last run


def run_measured(argv, stdout=None, log=None, timeout=None, driver=None):
    """Run argv under runstat: (exit status, cpu seconds, wall seconds, peak RSS KiB).
    CPU includes the helper processes logship reaps (wait4 counts them). Peak RSS is the larger
    of runstat's (the biggest single process) and the resident memory of the whole tree,
    sampled while it runs, so logship and its logship-http helper count together: as root,
    the distinct physical pages of both (what they share, like libc, counted once); otherwise
    the sum of their VmRSS.
    After timeout seconds the command is killed (SIGKILL, status 137).
    driver: for a command that does not exit by itself (a server): driver() runs in a thread
    once the command is started, and when it returns the command gets SIGTERM."""
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    err = open(log, "wb") if log else subprocess.DEVNULL
    fd, stat = tempfile.mkstemp(prefix="runstat-")
    os.close(fd)
    tree_peak = sum_peak = 0
    union_at = 0.0
    PARTS_PEAK.clear()
    try:
        p = subprocess.Popen([RUNSTAT, stat] + argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        deadline = time.time() + timeout if timeout else None
        drv = None
        if driver:
            import threading
            drv = threading.Thread(target=driver, daemon=True)
            drv.start()
        while p.poll() is None:
            if drv and not drv.is_alive():
                drv = None
                kids = tree_pids(p.pid)[1:2]
                if kids:
                    os.kill(kids[0], signal.SIGTERM)
            if deadline and time.time() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                break
            # runstat's children: the measured command and what it started; with more than
            # one process, frames they share (libc...) are counted once when root can see them
            procs = tree_pids(p.pid)[1:]
            upper = 0
            for c in procs:
                try:
                    name = os.path.basename(os.readlink("/proc/%d/exe" % c))
                    with open("/proc/%d/status" % c) as f:
                        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
                    PARTS_PEAK[name] = max(PARTS_PEAK.get(name, 0), kb)
                    upper += kb
                except (OSError, StopIteration, ValueError):
                    pass
            # The union of frames (pagemap) when the VmRSS sum is at a new high, else every
            # 0.25 s: on every 20 ms sample the walk cost the harness 0.8 CPU s per 3.6 s run,
            # taken from the job itself when it had both cores (the 2-core backlog row's
            # wall) but from the idle core when it was pinned to one.
            mono = time.monotonic()
            if upper > sum_peak or mono - union_at >= 0.25:
                sum_peak = max(sum_peak, upper)
                union_at = mono
                now = tree_union_kb(procs) if len(procs) > 1 else None
                tree_peak = max(tree_peak, upper if now is None else now)
            time.sleep(0.02)
        with open(stat) as f:
            fields = f.read().split()
        if len(fields) != 5:
            return 137, 0.0, 0.0, 0    # killed on timeout
        code, user, sys_, rss, wall = fields
    finally:
        os.unlink(stat)
        for f in (out, err):
            if hasattr(f, "close"):
                f.close()
    return int(code), float(user) + float(sys_), float(wall), max(int(rss), tree_peak)


def rss_split_kb(pid):
    """VmRSS of pid split into anonymous memory, the logship binary and shared libraries (KiB)."""
    total = anon = exe = libs = 0
    nlibs = set()
    name = ""
    with open("/proc/%d/smaps" % pid) as f:
        for ln in f:
            parts = ln.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else ""
            elif parts and parts[0] == "Rss:":
                kb = int(parts[1])
                total += kb
                if name.startswith("/") and ".so" in os.path.basename(name):
                    libs += kb
                    nlibs.add(name)
                elif name.startswith("/"):
                    exe += kb
                else:
                    anon += kb
    return {"rss": total, "anon": anon, "exe": exe, "libs": libs, "nlibs": len(nlibs)}


def has_plugin(kind, name):
    out = subprocess.run([LOGSHIP, "--list-plugins"], capture_output=True, text=True).stdout
    return any(ln.split()[:2] == [kind, name] for ln in out.splitlines())


SOURCE = """
<source>
  @type tail
  path {log}
  pos_file {work}/pos
  read_from_head {head}
  tag nginx.access
  <parse>
    @type nginx
  </parse>
</source>
"""


def conf_null(log, work):
    return SOURCE.format(log=log, work=work, head="true") + """
<match nginx.**>
  @type null
</match>
"""


def conf_file(log, work, compress, buffer_type="file", head="true"):
    buf = "    @type file\n    path %s/buf\n" % work if buffer_type == "file" else "    @type memory\n"
    return SOURCE.format(log=log, work=work, head=head) + """
<match nginx.**>
  @type file
  path {work}/out/access
  compress {compress}
  <format>
    @type json
  </format>
  <buffer time>
{buf}    timekey 1h
  </buffer>
</match>
""".format(work=work, compress=compress, buf=buf)


def s3_match(srv, pattern, path, buffer, store="gzip"):
    """An out_s3 <match> against srv, JSON lines; buffer: the <buffer> section."""
    return """
<match {pattern}>
  @type s3
  aws_key_id "{key}"
  aws_sec_key "{secret}"
  s3_bucket {bucket}
  s3_region {region}
  s3_endpoint {endpoint}
  force_path_style true
  path {path}
  store_as {store}
  <format>
    @type json
  </format>
{buffer}</match>
""".format(pattern=pattern, path=path, key=srv.key, secret=srv.secret, bucket=srv.bucket,
           region=srv.region, endpoint=srv.endpoint, buffer=buffer, store=store)


def conf_s3(log, work, srv, buffer_type="file", head="true", store="gzip"):
    buf = "    @type file\n    path %s/buf\n" % work if buffer_type == "file" else ""
    return SOURCE.format(log=log, work=work, head=head) + s3_match(
        srv, "nginx.**", "nginx-access-", "  <buffer time>\n%s    timekey 1h\n  </buffer>\n" % buf,
        store)


def conf_parquet(log, work):
    return SOURCE.format(log=log, work=work, head="true") + """
<match nginx.**>
  @type file
  path {work}/out/access
  path_suffix .parquet
  <format>
    @type parquet
    schema_parser nginx
    compression zstd
  </format>
  <buffer time>
    @type file
    path {work}/buf
    timekey 1h
  </buffer>
</match>
""".format(work=work)


def hour_query(fmt, paths, work):
    """The Athena-like query (count by status for one hour, the hour's files only) in DuckDB:
    (bytes its process read from the files for the query, {code: count}). The bytes are the
    process's read()/pread() total (/proc/self/io rchar) around the query: DuckDB's profiler
    reports total_bytes_read for Parquet scans but not for read_json, so it cannot compare."""
    import duckdb
    lst = "[" + ", ".join("'%s'" % p for p in paths) + "]"
    src = ("read_parquet(%s)" % lst if fmt == "parquet"
           else "read_json(%s, format = 'newline_delimited', compression = 'gzip')" % lst)
    sql = "SELECT code::INTEGER AS code, count(*) AS n FROM %s GROUP BY ALL ORDER BY code" % src
    (res,), (nread,) = duckdb.query(sql, reads=True)
    counts = {int(r["code"]) if r["code"] is not None else None: int(r["n"]) for r in res}
    return nread, counts


def fresh(work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "out"))
    return work


REPEAT = 1
TIMEOUT = 1800
TASKSET = None   # CPU list for taskset -c (the 1-core/2-core backlog rows), None: no pinning
CORES_LOAD = None   # (least, largest 1-minute load average, runs) around the s3-cores rows


def run_logship(name, conf, work, reset=None):
    """Run logship --oneshot REPEAT times from a clean state (reset() clears external state
    such as uploaded objects); keep the run with the least CPU. The output of the last run is
    left for checking."""
    path = os.path.join(work, "logship.conf")
    best = None
    for i in range(REPEAT):
        if i:
            fresh(work)
            if reset:
                reset()
        with open(path, "w") as f:
            f.write(conf)
        argv = [LOGSHIP, "-c", path, "--oneshot", "-q"]
        if TASKSET:
            argv = ["taskset", "-c", TASKSET] + argv
        rc, cpu, wall, rss = run_measured(argv,
                                          log=os.path.join(work, "logship.log"), timeout=TIMEOUT)
        if rc != 0:
            with open(os.path.join(work, "logship.log"), errors="replace") as f:
                tail = f.read()[-3000:]
            raise SystemExit("bench: %s: logship exited %d\n%s" % (name, rc, tail))
        if best is None or cpu < best.cpu:
            best = Result(name, cpu, wall, max(rss, best.rss_kb if best else 0))
            best.parts = dict(PARTS_PEAK)
    return best


def best_of(argv, stdout=None):
    best = None
    for _ in range(REPEAT):
        r = run_measured(argv, stdout=stdout)
        if best is None or r[1] < best[1]:
            best = r
    return best


def out_files(work):
    d = os.path.join(work, "out")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))


def count_lines_files(paths):
    n = 0
    for p in paths:
        opener = gzip.open if p.endswith(".gz") else open
        with opener(p, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += b.count(b"\n")
    return n


def check_count(name, got, want):
    if got != want:
        raise SystemExit("bench: %s delivered %d records, expected %d" % (name, got, want))


def gunzip_single_member(data):
    """Decompress data as exactly one gzip member; fail on trailing bytes (a second member)."""
    d = zlib.decompressobj(wbits=31)
    out = d.decompress(data) + d.flush()
    if not d.eof or d.unused_data:
        raise SystemExit("bench: object is not one gzip member (eof=%s, %d trailing bytes)"
                         % (d.eof, len(d.unused_data)))
    return out


def unzstd_single_frame(data, tmp):
    """Decompress data with the zstd tool; fail unless it is exactly one frame."""
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        listing = subprocess.run(["zstd", "-l", tmp], capture_output=True, text=True, check=True)
        frames = listing.stdout.splitlines()[1].split()[0]
        if frames != "1":
            raise SystemExit("bench: object is not one zstd frame (%s frames)" % frames)
        return subprocess.run(["zstd", "-q", "-dc", tmp], capture_output=True, check=True).stdout
    finally:
        os.unlink(tmp)


def unxz_single_stream(data):
    """Decompress data as exactly one .xz stream; fail on trailing bytes (a second stream)."""
    d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    out = d.decompress(data)
    if not d.eof or d.unused_data:
        raise SystemExit("bench: object is not one xz stream (eof=%s, %d trailing bytes)"
                         % (d.eof, len(d.unused_data)))
    return out


# store_as -> the real tool's command for the floor row, and the stage's name
STORES = {
    "zstd": (["zstd", "-3", "-q", "-c"], "same, store_as zstd (level 3)"),
    "lzma2": (["xz", "-0", "-q", "-c"], "same, store_as lzma2 (xz preset 0, as -qf0)"),
}


IDLE_SETTLE = 13.0   # logship-http exits 10 s after the last request (LOGSHIP_HTTP_IDLE)


def idle_rss(conf, work, settle=IDLE_SETTLE):
    """RSS of an idle agent and everything it runs, once start-up requests are done."""
    path = os.path.join(work, "idle.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = subprocess.Popen([LOGSHIP, "-c", path, "-q"], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "idle.log"), "wb"))
    try:
        time.sleep(settle)
        if p.poll() is not None:
            raise SystemExit("bench: idle agent exited %d" % p.returncode)
        samples = []
        for _ in range(5):
            d = rss_split_kb(p.pid)
            d["helpers"] = sum(tree_rss_kb(c) for c in tree_pids(p.pid)[1:])
            d["rss"] += d["helpers"]
            samples.append(d)
            time.sleep(0.2)
        return max(samples, key=lambda d: d["rss"])
    finally:
        stop(p)


def stop(p, grace=10):
    """SIGTERM, then SIGKILL if p has not exited after grace seconds."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


S3_NAME = "tail > nginx > json > file buffer > gzip > S3 (moto)"


def check_objects(srv, work, name, want, r, store="gzip"):
    """Check that the bucket holds want records, each object one gzip member (zstd frame, xz
    stream); note the objects and their bytes in r, remove work and return r."""
    n = objs = obytes = 0
    for key in sorted(o["Key"] for o in srv.list_objects()):
        body = srv.get_object(key)
        objs += 1
        obytes += len(body)
        if store == "zstd":
            text = unzstd_single_frame(body, os.path.join(work, "obj.zst"))
        elif store == "lzma2":
            text = unxz_single_stream(body)
        else:
            text = gunzip_single_member(body)
        n += text.count(b"\n")
    check_count(name, n, want)
    r.note = "(%d objects, %.1f MB)" % (objs, obytes / MB)
    r.stored = obytes
    shutil.rmtree(work)
    return r


def proc_cpu(pid):
    """user+sys CPU seconds a running process (moto_server) has used so far"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def s3_stage(log, work, lines, buffer_type="file", name=None, store="gzip"):
    """The S3 row: upload to moto (IAM auth on), then read every object back with the admin
    client and check it is one gzip member (zstd frame, xz stream) holding the expected
    records."""
    name = name or S3_NAME
    import s3server, lstest  # noqa: E401
    srv = s3server.S3Server.start()
    try:
        fresh(work)
        # path without "/": moto 5 mis-canonicalises "/" in query strings (see test_s3.py)
        def empty_bucket():
            for o in srv.list_objects():
                srv.admin.delete_object(Bucket=srv.bucket, Key=o["Key"])

        before = proc_cpu(srv.proc.pid)
        r = run_logship(name, conf_s3(log, work, srv, buffer_type=buffer_type, store=store), work,
                        reset=empty_bucket)
        r.peer_cpu = (proc_cpu(srv.proc.pid) - before) / REPEAT
        return check_objects(srv, work, "s3 " + store, lines, r, store)
    except SystemExit as e:
        print(str(e)[-1500:], file=sys.stderr)
        return Result(name, note="(failed: %s)" % str(e).splitlines()[0])
    finally:
        lstest.cleanup()


def s3_split_stage(log, work):
    """Issue 17's "everything but compression": the S3 job once more under perf(1), every
    thread and the logship-http helper sampled. Returns libdeflate's share of the samples (its
    compressor and the gzip trailer's CRC-32), or why there is none. perf's sampling costs
    the run some CPU itself, so only the share is taken from it, applied to the S3 row."""
    import s3server, lstest  # noqa: E401
    perf = shutil.which("perf")
    if perf is None:
        return "S3 job without compression: not measured (no perf; apt-get install linux-perf)"
    srv = s3server.S3Server.start()
    try:
        fresh(work)
        path = os.path.join(work, "logship.conf")
        with open(path, "w") as f:
            f.write(conf_s3(log, work, srv))
        data = os.path.join(work, "perf.data")
        rc = subprocess.run([perf, "record", "-q", "-F", "999", "-o", data, LOGSHIP, "-c", path,
                             "--oneshot", "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=TIMEOUT).returncode
        if rc != 0:
            return "S3 job without compression: not measured (logship under perf exited %d)" % rc
        rep = subprocess.run([perf, "report", "-i", data, "--stdio", "--sort", "dso",
                              "--percent-limit", "0"], capture_output=True, text=True).stdout
        shares = {}
        for ln in rep.splitlines():
            m = re.match(r"\s*([0-9.]+)%\s+(\S+)", ln)
            if m:
                shares[m.group(2)] = shares.get(m.group(2), 0.0) + float(m.group(1))
        total = sum(shares.values())
        deflate = sum(v for k, v in shares.items() if k.startswith("libdeflate"))
        if total <= 0:
            return "S3 job without compression: not measured (perf recorded no samples)"
        return deflate / total
    finally:
        lstest.cleanup()


DEB_PY = "/usr/bin/python3"      # Debian's, with python3-msgpack (this one has no msgpack)
FWD_CLIENT = os.path.join(HERE, "fwd_client.py")
FWD_NAME = "forward (PackedForward, 1 KB records) > file buffer > gzip > S3 (moto)"
FWD_BATCH = 1000


def conf_forward(work, srv, port):
    # no time key: records arrive with the current time; chunks are flushed every 5 s and
    # at shutdown, which the stage ends with (SIGTERM once every request is acked)
    return """
<source>
  @type forward
  bind 127.0.0.1
  port {port}
  chunk_id_file {work}/chunk_ids
</source>
<match bench.idle>
  @type null
</match>
""".format(port=port, work=work) + s3_match(srv, "bench.**", "forward-", """  <buffer>
    @type file
    path {work}/buf
    flush_mode interval
    flush_interval 5s
    flush_at_shutdown true
  </buffer>
""".format(work=work))


def forward_stage(log, work, count):
    """count 1 KB records sent by fwd_client.py (acks awaited) into in_forward -> S3; logship's
    CPU (with logship-http) from start to its exit after the last ack; every record is counted
    back from the objects. Returns the Result with .fwd (the client's figures) or a failed row."""
    import json, s3server, lstest  # noqa: E401
    srv = s3server.S3Server.start()
    try:
        fresh(work)
        port = lstest.free_port()
        path = os.path.join(work, "logship.conf")
        with open(path, "w") as f:
            f.write(conf_forward(work, srv, port))
        client = {}

        def drive():
            p = subprocess.run([DEB_PY, FWD_CLIENT, "send", str(port), log, str(count),
                                str(FWD_BATCH)], capture_output=True, text=True)
            client["rc"], client["out"], client["err"] = p.returncode, p.stdout, p.stderr

        rc, cpu, wall, rss = run_measured([LOGSHIP, "-c", path, "-q"], driver=drive,
                                          log=os.path.join(work, "logship.log"), timeout=TIMEOUT)
        if client.get("rc") != 0:
            raise SystemExit("bench: forward client failed: %s" % client.get("err", "")[-2000:])
        if rc != 0:
            with open(os.path.join(work, "logship.log"), errors="replace") as f:
                raise SystemExit("bench: forward: logship exited %d\n%s" % (rc, f.read()[-3000:]))
        fwd = json.loads(client["out"].splitlines()[-1])
        r = Result(FWD_NAME, cpu, wall, rss)
        r.parts = dict(PARTS_PEAK)
        r.fwd = fwd
        return check_objects(srv, work, "forward", fwd["records"], r)
    except SystemExit as e:
        print(str(e)[-1500:], file=sys.stderr)
        return Result(FWD_NAME, note="(failed: %s)" % str(e).splitlines()[0])
    finally:
        lstest.cleanup()


def proc_cpu(pid):
    """user+sys seconds of pid so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def forward_idle(work, clients=1000, span=10.0):
    """An idle in_forward listener (same configuration as the forward stage): CPU over span
    seconds and VmRSS with no client, then the same with `clients` idle connections open
    (fwd_client.py idle). Returns a dict of the four figures."""
    import s3server, lstest  # noqa: E401
    srv = s3server.S3Server.start()
    fresh(work)
    port = lstest.free_port()
    path = os.path.join(work, "idle.conf")
    with open(path, "w") as f:
        f.write(conf_forward(work, srv, port))
    p = subprocess.Popen([LOGSHIP, "-c", path, "-q"], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "idle.log"), "wb"))
    c = None
    out = {}
    try:
        lstest.wait_until(lambda: socket_open(port), what="in_forward listening")
        time.sleep(2)
        for label in ("none", "clients"):
            if label == "clients":
                c = subprocess.Popen([DEB_PY, FWD_CLIENT, "idle", str(port), str(clients)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                if c.stdout.readline().strip() != "ready":
                    raise SystemExit("bench: forward idle client failed")
                time.sleep(1)
            c0 = proc_cpu(p.pid)
            time.sleep(span)
            out["cpu_" + label] = proc_cpu(p.pid) - c0
            out["rss_" + label] = tree_rss_kb(p.pid)
            if p.poll() is not None:
                raise SystemExit("bench: idle forward agent exited %d" % p.returncode)
        out["span"], out["clients"] = span, clients
        return out
    finally:
        if c:
            c.stdin.close()
            c.wait(30)
        stop(p, 30)
        lstest.cleanup()


def socket_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def conf_many(logdir, work):
    return """
<source>
  @type tail
  path %s/*.log
  pos_file %s/tail.pos
  tag many
  read_from_head true
  <parse>
    @type none
  </parse>
</source>
<match **>
  @type null
</match>
""" % (logdir, work)


def pos_caught_up(work, sizes):
    """Every file's pos_file offset equals its size: every line was read and committed."""
    got = {}
    try:
        with open(os.path.join(work, "tail.pos")) as f:
            for ln in f:
                parts = ln.rstrip("\n").split("\t")
                if len(parts) == 3:
                    got[parts[0]] = int(parts[1], 16)
    except OSError:
        return False
    return all(got.get(p) == n for p, n in sizes.items())


def start_tail_agent(work, logdir):
    import lstest
    path = os.path.join(work, "many.conf")
    with open(path, "w") as f:
        f.write(conf_many(logdir, work))
    p = subprocess.Popen([LOGSHIP, "-c", path, "-q"], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "many.log"), "ab"))
    return p, lstest


def many_files_run(work, nfiles, rate, seconds, ticks=100):
    """logship following nfiles files (a glob), a writer appending `rate` lines a second in all
    (ticks a second, each writing rate/ticks lines, one write() per line, to the next files in
    turn); returns (CPU seconds per line, lines) once the pos_file shows every line read."""
    fresh(work)
    logdir = os.path.join(work, "logs")
    os.makedirs(logdir)
    paths = [os.path.join(logdir, "f%05d.log" % i) for i in range(nfiles)]
    fds = [os.open(q, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for q in paths]
    p, lstest = start_tail_agent(work, logdir)
    try:
        sizes = {q: 0 for q in paths}
        time.sleep(2.0)
        per_tick = max(1, rate // ticks)
        c0 = proc_cpu(p.pid)
        t0 = time.monotonic()
        k = n = 0
        for t in range(int(seconds * ticks)):
            for _ in range(per_tick):
                i = k % nfiles
                line = b'127.0.0.1 - - [03/Dec/2026:10:00:00 +0000] "GET /f%d/%d HTTP/1.1" 200 612 "-" "bench"\n' % (i, n)
                os.write(fds[i], line)
                sizes[paths[i]] += len(line)
                k += 1
                n += 1
            delay = t0 + (t + 1) / ticks - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        lstest.wait_until(lambda: pos_caught_up(work, sizes), 60, interval=0.2,
                          what="every line read (pos_file)")
        cpu = proc_cpu(p.pid) - c0
        if p.poll() is not None:
            raise SystemExit("bench: many-files agent exited %d" % p.returncode)
        return cpu / n, n
    finally:
        for fd in fds:
            os.close(fd)
        stop(p, 30)


def many_files_idle(work, nfiles, span=10.0):
    """logship following nfiles idle files (one line each): CPU over span seconds and VmRSS."""
    import resource
    fresh(work)
    logdir = os.path.join(work, "logs")
    os.makedirs(logdir)
    sizes = {}
    for i in range(nfiles):
        q = os.path.join(logdir, "f%05d.log" % i)
        with open(q, "wb") as f:
            f.write(b"line of file %d\n" % i)
        sizes[q] = os.path.getsize(q)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < nfiles + 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    p, lstest = start_tail_agent(work, logdir)
    try:
        t0 = time.monotonic()
        lstest.wait_until(lambda: pos_caught_up(work, sizes), 300, interval=0.5,
                          what="every idle file read (pos_file)")
        ready = time.monotonic() - t0
        time.sleep(2.0)
        c0 = proc_cpu(p.pid)
        time.sleep(span)
        cpu = proc_cpu(p.pid) - c0
        rss = tree_rss_kb(p.pid)
        if p.poll() is not None:
            raise SystemExit("bench: idle many-files agent exited %d" % p.returncode)
        return {"files": nfiles, "cpu": cpu, "span": span, "rss": rss, "ready": ready,
                "fds": len(os.listdir("/proc/%d/fd" % p.pid))}
    finally:
        stop(p, 30)


def many_files_stage(base, seconds, rate=5000, nfiles=500, idle_files=10000):
    """The many-files rows: per-line CPU with nfiles files against one file at the same rate
    (best of REPEAT runs each, alternating), and an idle agent over idle_files files."""
    many = one = None
    for _ in range(REPEAT):
        one_r = many_files_run(os.path.join(base, "one-file"), 1, rate, seconds)
        many_r = many_files_run(os.path.join(base, "many-files"), nfiles, rate, seconds)
        one = one_r if one is None or one_r[0] < one[0] else one
        many = many_r if many is None or many_r[0] < many[0] else many
    idle = many_files_idle(os.path.join(base, "many-idle"), idle_files) if idle_files else None
    return {"one": one, "many": many, "nfiles": nfiles, "rate": rate, "seconds": seconds,
            "idle": idle}


def fmt_many(m):
    out = ["Many files (tail, `@type none` > null, default watch settings, %d lines/s in all for "
           "%g s, one write() per line): %d files %.2f us CPU per line, 1 file %.2f us; %.2fx"
           % (m["rate"], m["seconds"], m["nfiles"], m["many"][0] * 1e6, m["one"][0] * 1e6,
              m["many"][0] / m["one"][0])]
    if m["idle"]:
        d = m["idle"]
        out.append("Idle, %d files followed (%d fds open): %.3f CPU s over %.0f s, RSS %.1f MB; "
                   "every file read %.1f s after the start"
                   % (d["files"], d["fds"], d["cpu"], d["span"], d["rss"] / 1024.0, d["ready"]))
    return out


def fmt_row(r, in_bytes, lines, floor_cpu):
    if r.cpu is None:
        return "| %s | n/a | n/a | n/a | n/a | n/a | n/a |%s" % (r.name, " " + r.note if r.note else "")
    lps = lines / r.wall if lines else 0
    mbs = in_bytes / MB / r.wall
    cpugb = r.cpu / (in_bytes / GB)
    ratio = r.cpu / floor_cpu if floor_cpu else float("nan")
    lps_s = "%.0f" % lps if lines else "-"
    parts = getattr(r, "parts", {})
    split = ""
    if "logship-http" in parts:
        # each process's own peak; the column is the peak of their sum
        split = " (peaks: logship %.1f MB, logship-http %.1f MB)" % (
            parts.get("logship", 0) / 1024.0, parts["logship-http"] / 1024.0)
    stored = "%.1f MB" % (r.stored / MB) if r.stored is not None else "-"
    return "| %s | %s | %.1f | %.2f | %.1f MB | %s | %.2fx |%s%s" % (
        r.name, lps_s, mbs, cpugb, r.rss_kb / 1024.0, stored, ratio, " " + r.note if r.note else "",
        split)


def main():
    ap = argparse.ArgumentParser(description="logship end-to-end benchmark against the gzip floor")
    ap.add_argument("--size", default=os.environ.get("BENCH_SIZE", "500M"),
                    help="input log size (k/M/G), default 500M")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hours", type=int, default=6, help="time span of the generated log")
    ap.add_argument("--cache", default=os.environ.get("BENCH_CACHE", "/tmp/logship-bench"),
                    help="where generated logs are kept between runs")
    ap.add_argument("--stages",
                    default="null,file-text,file-gzip,parquet,s3,s3-split,s3-cores,s3-membuf,"
                            "file-gzip-membuf,s3-zstd,s3-xz,forward,many-files",
                    help="comma-separated subset of null,file-text,file-gzip,parquet,s3,s3-split,"
                         "s3-cores,s3-membuf,file-gzip-membuf,s3-zstd,s3-xz,forward,many-files (parquet's size and "
                         "hour query compare with file-gzip; s3-cores: the S3 backlog pinned to 1 "
                         "and to 2 CPUs with taskset; s3-split: the S3 job once more under perf, "
                         "libdeflate's share of the samples, so what is not compression; forward: 1 KB records over in_forward into "
                         "S3, one per KB of input log, compared with s3 per record, and an idle "
                         "listener with and without 1,000 idle clients; many-files: per-line CPU with 500 files "
                         "against 1 at 5,000 lines/s, and 10,000 idle files)")
    ap.add_argument("--many-seconds", type=float, default=10.0,
                    help="how long the many-files writer runs")
    ap.add_argument("--idle-files", type=int, default=10000,
                    help="files of the many-files idle row (0: no idle row)")
    ap.add_argument("--escaped-quotes", type=float, default=0.0, metavar="PCT",
                    help="percentage of generated lines with \\\" in the user agent, which the "
                         "nginx parser rejects (gen_nginx.py)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every measurement N times and keep the one with the least CPU")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle RSS measurement")
    ap.add_argument("--results", help="also write the table as Markdown to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()

    if not os.access(LOGSHIP, os.X_OK):
        raise SystemExit("bench: LOGSHIP=%s is not executable (run make first)" % LOGSHIP)
    global REPEAT, TASKSET, CORES_LOAD
    REPEAT = max(1, a.repeat)
    stages = [s for s in a.stages.split(",") if s]
    size = gen_nginx.parse_size(a.size)
    os.makedirs(a.cache, exist_ok=True)
    build_runstat(a.cache)
    log = os.path.join(a.cache, "nginx-%d-s%d-h%d%s.log" % (
        size, a.seed, a.hours, "-q%g" % a.escaped_quotes if a.escaped_quotes else ""))
    meta = log + ".lines"
    if not (os.path.exists(log) and os.path.exists(meta)):
        print("generating %s (%d bytes, seed %d)..." % (log, size, a.seed), flush=True)
        t0 = time.monotonic()
        n, _ = gen_nginx.generate(log, size, a.seed, a.hours, escaped_quotes=a.escaped_quotes)
        with open(meta, "w") as f:
            f.write("%d\n" % n)
        print("  %d lines in %.1f s" % (n, time.monotonic() - t0), flush=True)
    counts = open(meta).read().split()
    if len(counts) < 2:
        # the lines the parser accepts, kept beside the count (older caches lack them)
        counts = [counts[0], str(count_accepted(log))]
        with open(meta, "w") as f:
            f.write("%s\n%s\n" % tuple(counts))
    generated, lines = int(counts[0]), int(counts[1])
    load_before = os.getloadavg()
    in_bytes = os.path.getsize(log)
    base = tempfile.mkdtemp(prefix="logship-bench-")
    results = []
    floor_rows = []
    try:
        # Floor 1: reading the input (also warms the page cache for every stage).
        run_measured(["cat", log])
        rc, cpu, wall, rss = best_of(["cat", log])
        floor_rows.append(Result("floor: cat log > /dev/null", cpu, wall, rss))

        # JSON lines for the gzip floor: logship's own JSON output (file-text stage), or
        # the same run without it being a listed stage.
        work = fresh(os.path.join(base, "file-text"))
        print("running file-text...", flush=True)
        r = run_logship("tail > nginx > json > file buffer > out_file (text)",
                        conf_file(log, work, "text"), work)
        files = out_files(work)
        check_count("file-text", count_lines_files(files), lines)
        json_path = os.path.join(base, "lines.json")
        with open(json_path, "wb") as o:
            for p in files:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, o, 1 << 20)
        shutil.rmtree(work)
        json_bytes = os.path.getsize(json_path)
        r.stored = json_bytes
        if "file-text" in stages:
            results.append(r)

        # Floor 2: the real gzip -6 over those JSON lines.
        print("running gzip -6...", flush=True)
        gz_path = os.path.join(base, "lines.json.gz")
        rc, cpu, wall, rss = best_of(["gzip", "-6", "-c", json_path], stdout=gz_path)
        gz_bytes = os.path.getsize(gz_path)
        floor = Result("floor: gzip -6 of the JSON lines", cpu, wall, rss, stored=gz_bytes)
        floor_rows.append(floor)
        os.unlink(gz_path)
        # the real zstd and xz beside the stages that use them, over the same lines
        for stage, store in (("s3-zstd", "zstd"), ("s3-xz", "lzma2")):
            if stage in stages:
                argv = STORES[store][0]
                print("running %s..." % " ".join(argv[:2]), flush=True)
                rc, cpu, wall, rss = best_of(argv + [json_path], stdout=gz_path)
                floor_rows.append(Result("floor: %s of the JSON lines" % " ".join(argv[:2]), cpu,
                                         wall, rss, stored=os.path.getsize(gz_path)))
                os.unlink(gz_path)
        os.unlink(json_path)

        if "null" in stages:
            print("running null...", flush=True)
            work = fresh(os.path.join(base, "null"))
            results.append(run_logship("tail > nginx > null", conf_null(log, work), work))
            shutil.rmtree(work)

        out_gz_bytes = None
        gz_files, gz_work, query_note = [], None, []
        if "file-gzip" in stages:
            print("running file-gzip...", flush=True)
            work = fresh(os.path.join(base, "file-gzip"))
            r = run_logship("tail > nginx > json > file buffer > out_file gzip",
                            conf_file(log, work, "gzip"), work)
            files = out_files(work)
            out_gz_bytes = sum(os.path.getsize(p) for p in files)
            check_count("file-gzip", count_lines_files(files), lines)
            subprocess.run(["gzip", "-t"] + files, check=True)
            r.note = "(%d files, %.1f MB)" % (len(files), out_gz_bytes / MB)
            r.stored = out_gz_bytes
            results.append(r)
            gz_files = files
            gz_work = work

        if "parquet" in stages:
            print("running parquet...", flush=True)
            import duckdb
            work = fresh(os.path.join(base, "parquet"))
            r = run_logship("tail > nginx > parquet (zstd pages) > file buffer > out_file",
                            conf_parquet(log, work), work)
            files = out_files(work)
            pq_bytes = sum(os.path.getsize(p) for p in files)
            got = duckdb.rows("SELECT count(*) AS n FROM read_parquet([%s])"
                              % ", ".join("'%s'" % p for p in files))[0]["n"]
            check_count("parquet", int(got), lines)
            r.note = "(%d files, %.1f MB%s)" % (
                len(files), pq_bytes / MB,
                ", %.3fx the bytes of gzip JSON" % (pq_bytes / out_gz_bytes) if out_gz_bytes else "")
            r.stored = pq_bytes
            results.append(r)
            if out_gz_bytes:
                # one hour: the first slice both outputs have (file names carry the slice)
                slice_of = lambda p: os.path.basename(p).split(".")[1].split("_")[0]
                hour = slice_of(files[0])
                pq_h = [p for p in files if slice_of(p) == hour]
                gz_h = [p for p in gz_files if slice_of(p) == hour]
                pq_read, pq_counts = hour_query("parquet", pq_h, work)
                gz_read, gz_counts = hour_query("json", gz_h, work)
                if pq_counts != gz_counts:
                    raise SystemExit("bench: the hour query differs: parquet %r, gzip JSON %r"
                                     % (pq_counts, gz_counts))
                query_note.append(
                    "Athena-like query (count by status, hour %s, that hour's files only; bytes DuckDB "
                    "read): Parquet %.2f MB, gzip JSON %.2f MB (%.3fx); "
                    "stored: Parquet %.1f MB, gzip JSON %.1f MB (%.3fx)"
                    % (hour, pq_read / MB, gz_read / MB, pq_read / gz_read, pq_bytes / MB,
                       out_gz_bytes / MB, pq_bytes / out_gz_bytes))
            shutil.rmtree(work)
        if gz_work:
            shutil.rmtree(gz_work)

        s3_ok = has_plugin("output", "s3")
        if "s3" in stages:
            if not s3_ok:
                results.append(Result(S3_NAME, note="(`@type s3` not registered yet)"))
            else:
                print("running s3...", flush=True)
                results.append(s3_stage(log, os.path.join(base, "s3"), lines))
        split = None
        if "s3-split" in stages and s3_ok:
            print("running s3-split...", flush=True)
            split = s3_split_stage(log, os.path.join(base, "s3-split"))
        cores = None
        if "s3-cores" in stages and s3_ok:
            # a backlog is wall-clock bound: the same job pinned to one CPU and to two, taking
            # turns (so a burst of other work on the machine hits both), the least wall time
            # of --repeat runs each, with the 1-minute load average seen around them
            reps, REPEAT = REPEAT, 1
            best, loads = {}, []
            try:
                for _ in range(reps):
                    for cpus, label in (("0", "1 core"), ("0,1", "2 cores")):
                        print("running s3 on %s..." % label, flush=True)
                        TASKSET = cpus
                        loads.append(os.getloadavg()[0])
                        r = s3_stage(log, os.path.join(base, "s3c"), lines,
                                     name="same, backlog on %s (taskset -c %s)" % (label, cpus))
                        loads.append(os.getloadavg()[0])
                        b = best.get(cpus)
                        if b is None or b.wall is None or (r.wall is not None and r.wall < b.wall):
                            best[cpus] = r
            finally:
                TASKSET, REPEAT = None, reps
            cores = [best["0"], best["0,1"]]
            CORES_LOAD = (min(loads), max(loads), reps)
            results.extend(cores)
        if "s3-membuf" in stages and s3_ok:
            print("running s3-membuf...", flush=True)
            results.append(s3_stage(log, os.path.join(base, "s3m"), lines, buffer_type="memory",
                                    name="same, out_s3's default memory buffer (8 MB chunks)"))
        for stage, store in (("s3-zstd", "zstd"), ("s3-xz", "lzma2")):
            if stage in stages and s3_ok:
                print("running %s..." % stage, flush=True)
                results.append(s3_stage(log, os.path.join(base, stage), lines, store=store,
                                        name=STORES[store][1]))

        fwd = fwd_idle = None
        if "forward" in stages:
            if not (s3_ok and has_plugin("input", "forward")):
                fwd = Result(FWD_NAME, note="(`@type forward` or `@type s3` not registered)")
            elif subprocess.run([DEB_PY, "-c", "import msgpack"]).returncode != 0:
                fwd = Result(FWD_NAME, note="(no python3-msgpack for %s)" % DEB_PY)
            else:
                print("running forward...", flush=True)
                fwd = forward_stage(log, os.path.join(base, "forward"), max(1, in_bytes // 1024))
                print("running forward idle listener...", flush=True)
                fwd_idle = forward_idle(os.path.join(base, "forward-idle"))

        if "file-gzip-membuf" in stages:
            print("running file-gzip-membuf...", flush=True)
            work = fresh(os.path.join(base, "membuf"))
            r = run_logship("same, default memory buffer (8 MB chunks)",
                            conf_file(log, work, "gzip", buffer_type="memory"), work)
            files = out_files(work)
            check_count("file-gzip-membuf", count_lines_files(files), lines)
            r.note = "(%d files)" % len(files)
            r.stored = sum(os.path.getsize(p) for p in files)
            results.append(r)
            shutil.rmtree(work)

        many = None
        if "many-files" in stages:
            print("running many-files...", flush=True)
            many = many_files_stage(base, a.many_seconds, idle_files=a.idle_files)

        idle = None
        if not a.no_idle:
            work = fresh(os.path.join(base, "idle"))
            idle_log = os.path.join(work, "idle-access.log")
            with open(idle_log, "w") as f:
                f.write("")
            if s3_ok:
                import s3server, lstest  # noqa: E401
                srv = s3server.S3Server.start()
                try:
                    idle = ("s3, file buffer", idle_rss(conf_s3(idle_log, work, srv, head="false"), work))
                finally:
                    lstest.cleanup()
            else:
                idle = ("out_file gzip, file buffer",
                        idle_rss(conf_file(idle_log, work, "gzip", head="false"), work))
    finally:
        if a.keep:
            print("work directory kept: %s" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)

    out = []
    out.append("Input: %s: %d lines, %.1f MB (seed %d, %d h); JSON lines %.1f MB; gzip -6 of them %.1f MB%s"
               % (os.path.basename(log), generated, in_bytes / MB, a.seed, a.hours, json_bytes / MB,
                  gz_bytes / MB,
                  "; logship's gzip %.1f MB" % (out_gz_bytes / MB) if out_gz_bytes else ""))
    out.append("Rejected by the nginx parser: %d lines (%.2f%%); every stage delivered the %d it"
               " accepts" % (generated - lines, 100.0 * (generated - lines) / max(generated, 1),
                             lines))
    load_after = os.getloadavg()
    out.append("Machine: %d CPUs, %s; load average (1, 5, 15 min) %.2f %.2f %.2f at the start,"
               " %.2f %.2f %.2f at the end" % ((os.cpu_count(), cpu_model()) + load_before
                                              + load_after))
    out.append("")
    out.append("| stage | lines/s | MB/s | CPU s/GB | peak RSS | stored | x gzip -6 |")
    out.append("|---|---|---|---|---|---|---|")
    for r in floor_rows:
        out.append(fmt_row(r, in_bytes, 0, floor.cpu))
    for r in results:
        out.append(fmt_row(r, in_bytes, lines, floor.cpu))
    out.append("")
    if split is not None:
        s3_row = next((r for r in results if r.name == S3_NAME and r.cpu), None)
        if isinstance(split, str):
            out.append(split)
        elif s3_row is None:
            out.append("S3 job without compression: libdeflate %.1f%% of perf's samples (no S3"
                       " row in this run to apply it to)" % (100.0 * split))
        else:
            rest = s3_row.cpu * (1.0 - split)
            out.append("S3 job without compression (issue 17's \"everything but compression\","
                       " target 0.15x): libdeflate %.1f%% of perf's samples, so the rest of the S3"
                       " row's CPU is %.2f CPU s/GB = %.3fx gzip -6"
                       % (100.0 * split, rest / (in_bytes / GB), rest / floor.cpu))
    if fwd:
        out.extend(fmt_forward(fwd, fwd_idle, next((r for r in results if r.name == S3_NAME), None),
                               lines, in_bytes))
    if many:
        out.extend(fmt_many(many))
    if idle:
        d = idle[1]
        out.append("Idle RSS (%s, tail on an idle file, after %.0f s): %.1f MB = %.1f MB anonymous + %.1f MB"
                   " logship binary + %.1f MB mapped pages of %d shared libraries + %.1f MB helper"
                   " processes (logship-http exits 10 s after its last request)"
                   % (idle[0], IDLE_SETTLE, d["rss"] / 1024.0, d["anon"] / 1024.0, d["exe"] / 1024.0,
                      d["libs"] / 1024.0, d["nlibs"], d["helpers"] / 1024.0))
    if cores and cores[0].cpu and cores[1].cpu:
        out.append("Backlog, S3, 2 cores against 1 in this run: %.2fx the wall time (speed-up %.2fx),"
                   " %.2fx the CPU (least wall time of %d alternating runs each; 1-minute load"
                   " average %.2f-%.2f around them, which includes moto_server and the job itself:"
                   " wall time is only meaningful on an otherwise idle machine)"
                   % (cores[1].wall / cores[0].wall, cores[0].wall / cores[1].wall,
                      cores[1].cpu / cores[0].cpu, CORES_LOAD[2], CORES_LOAD[0], CORES_LOAD[1]))
        if cores[0].peer_cpu is not None and cores[1].peer_cpu is not None:
            out.append("moto_server (not pinned) used %.2f / %.2f CPU s during the 1-core / 2-core"
                       " runs, against logship's %.2f / %.2f: on 2 cores it competes with the"
                       " job for them, on 1 it has the other core to itself"
                       % (cores[0].peer_cpu, cores[1].peer_cpu, cores[0].cpu, cores[1].cpu))
    # the README's memory figures: idle under 8 MB, peak under 32 MB (logship + logship-http)
    over = ["%s %.1f MB" % (r.name, r.rss_kb / 1024.0) for r in results
            if r.rss_kb and r.rss_kb > 32 * 1024]
    out.append("Peak RSS against the README's 32 MB: %s" % (
        "over in " + "; ".join(over) if over else "every row under (largest %.1f MB)" % (
            max([r.rss_kb for r in results if r.rss_kb] or [0]) / 1024.0)))
    if idle:
        out.append("Idle RSS against the README's 8 MB: %.1f MB, %s" % (
            idle[1]["rss"] / 1024.0, "under" if idle[1]["rss"] < 8 * 1024 else "OVER"))
    out.extend(query_note)
    out.append("MB/s: input MB (10^6 bytes) per wall second; CPU s/GB: user+sys seconds per GB of input log;"
               " stored: bytes written (files or objects); x gzip -6: CPU over the gzip -6 floor's CPU"
               " in the same run.")
    text = "\n".join(out)
    print()
    print(text)
    if a.results:
        with open(a.results, "w") as f:
            f.write(text + "\n")


def fmt_forward(r, idle, s3, lines, in_bytes):
    """The forward stage's lines: its figures are per record and per record byte, not per
    byte of input log, so they are not a row of the table."""
    if r.cpu is None:
        return ["%s: n/a %s" % (FWD_NAME, r.note), ""]
    f = r.fwd
    out = ["%s: %d records of %d bytes on average (%.1f MB of MessagePack records) in %d "
           "requests of up to %d entries, EventTime, each ack awaited; every record counted back "
           "%s." % (FWD_NAME, f["records"], f["record_bytes"] // max(f["records"], 1),
                    f["record_bytes"] / MB, f["requests"], FWD_BATCH, r.note)]
    per = r.cpu / f["records"]
    ratio = ""
    if s3 is not None and s3.cpu:
        # a record here is ~1 KB, an nginx line ~220 bytes: per byte is the fairer comparison
        ratio = ("; CPU per record %.2fx the tail > nginx > gzip > S3 stage's per line in this run "
                 "(%.2f us against %.2f us), per byte %.2fx (record bytes against log bytes)"
                 % (per / (s3.cpu / lines), per * 1e6, s3.cpu / lines * 1e6,
                    (r.cpu / f["record_bytes"]) / (s3.cpu / in_bytes)))
    parts = getattr(r, "parts", {})
    out.append("- %.0f events per CPU second (logship %s), %.2f CPU s/GB of record bytes, peak RSS "
               "%.1f MB%s; the client's %d events/s wall from the first request to the last ack%s"
               % (f["records"] / r.cpu,
                  "+ logship-http" if "logship-http" in parts else "alone", r.cpu / (f["record_bytes"] / GB),
                  r.rss_kb / 1024.0,
                  " (peaks: logship %.1f MB, logship-http %.1f MB)" % (
                      parts.get("logship", 0) / 1024.0, parts["logship-http"] / 1024.0)
                  if "logship-http" in parts else "",
                  f["records"] / f["elapsed"], ratio))
    if idle:
        tick = 1.0 / os.sysconf("SC_CLK_TCK")
        cpu = lambda c: "%.2f" % c if c >= tick else "under %.2f (one clock tick)" % tick
        out.append("- Idle listener: %s CPU s over %.0f s and %.1f MB RSS with no client; with "
                   "%d idle clients connected, %s CPU s over %.0f s and %.1f MB RSS"
                   % (cpu(idle["cpu_none"]), idle["span"], idle["rss_none"] / 1024.0,
                      idle["clients"], cpu(idle["cpu_clients"]), idle["span"],
                      idle["rss_clients"] / 1024.0))
    out.append("")
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
