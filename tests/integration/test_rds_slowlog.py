"""rds_slowlog / rds_general_log against a real MariaDB with the RDS rotate procedures.

Every statement is slow-logged (long_query_time 0); each test generates
`SELECT SLEEP(0.01), '<marker>'` queries as the RDS-like master user and
checks that exactly those rows arrive, once, with the right types - in cron
(--oneshot) and daemon mode, across kill -9 at every step of the cycle, with
a failing output, with a concurrent harvester holding the lock, and in the
read-only mode (rotate false).
"""
import collections, glob, json, os, random, re, signal, subprocess, time

import lstest
import mariadb

# TEST_RUN reproduces a run: it seeds the random kill times too
RUN = os.environ.get("TEST_RUN") or "%06x" % random.randrange(1 << 24)


def db(key="default", extra=()):
    return mariadb.shared(key, extra)


def gen(server, prefix, first, n, sleep="0.01"):
    """n slow queries marked prefix-first .. prefix-(first+n-1), as the master user."""
    sql = "USE mysql;\n" + "".join(f"SELECT SLEEP({sleep}), '{prefix}-{i}';\n"
                                   for i in range(first, first + n))
    server.user_sql(sql)
    return [f"{prefix}-{i}" for i in range(first, first + n)]


def out_conf(d, tag, out_type="file", out_extra="", buf_extra=""):
    if out_type == "file":
        target = f"path {d}/out/rows\n  append true"
    else:
        target = f"path {d}/out/rows.fault\n  {out_extra}"
    return f"""
<match {tag}>
  @type {out_type}
  {target}
  <format>
    @type json
  </format>
  <inject>
    time_key ev_time
    time_type float
  </inject>
  <buffer>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3s
    retry_wait 0.2s
    retry_max_interval 0.5s
    {buf_extra}
  </buffer>
</match>
"""


def make_conf(d, server, typ="rds_slowlog", tag="rds.slow", extra="", **kw):
    text = f"""
<source>
  @type {typ}
  tag {tag}
  host 127.0.0.1
  port {server.port}
  username {mariadb.USER}
  password {mariadb.PASSWORD}
  state_file {d}/state/{typ}.state
  interval 0.5s
  {extra}
</source>
""" + out_conf(d, tag, **kw)
    os.makedirs(f"{d}/out", exist_ok=True)
    path = lstest.conf(text, d)
    os.chmod(path, 0o640)       # it holds the password
    return path


def records(d):
    recs = []
    for path in sorted(glob.glob(f"{d}/out/rows*")):
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    recs.append(json.loads(line))
    return recs


def markers(recs, prefix, key="sql_text"):
    rx = re.compile(r"^SELECT SLEEP\([0-9.]+\), '(" + re.escape(prefix) + r"-\d+)'$")
    out = collections.Counter()
    for r in recs:
        m = rx.match(r.get(key, ""))
        if m:
            out[m.group(1)] += 1
    return out


def assert_once(got, expected, what=""):
    dup = {k: v for k, v in got.items() if v > 1}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not dup, f"{what}: duplicated rows: {dup}"
    assert not missing, f"{what}: lost {len(missing)} rows: {missing[:20]}"
    assert not extra, f"{what}: unexpected rows: {extra[:20]}"


def oneshot(cfg, env=None, timeout=90):
    e = dict(os.environ)
    if env:
        e.update(env)
    return lstest.run(["-c", cfg, "--oneshot"], env=e, timeout=timeout)


def backup_count(server, table="slow_log_backup"):
    rows = server.root_sql(f"SELECT COUNT(*) FROM mysql.{table}")
    return int(rows[0][0])


# --------------------------------------------------------------------------


def test_oneshot_rows_once_with_types():
    server = db()
    d = lstest.tmpdir()
    cfg = make_conf(d, server)
    prefix = f"os{RUN}"
    t0 = time.time()
    want = gen(server, prefix, 1, 5)
    t1 = time.time()
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = records(d)
    got = markers(recs, prefix)
    assert_once(got, want, "first run")
    r = next(x for x in recs if x.get("sql_text", "").endswith(f"'{prefix}-1'"))
    # types: durations as float seconds, counters as integers, text as text
    assert isinstance(r["query_time"], float) and r["query_time"] >= 0.009, r
    assert isinstance(r["lock_time"], float), r
    for k in ("rows_sent", "rows_examined", "last_insert_id", "insert_id", "server_id",
              "thread_id", "rows_affected"):
        assert isinstance(r[k], int) and not isinstance(r[k], bool), (k, r)
    assert r["rows_sent"] == 1, r
    assert r["db"] == "mysql", r
    assert r["user"] == mariadb.USER and r["host_ip"] == "127.0.0.1", r
    assert r["user_host"].startswith(f"{mariadb.USER}[{mariadb.USER}] @"), r
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$", r["start_time"]), r
    # event time is the query's start, with microseconds
    assert t0 - 2 <= r["ev_time"] <= t1 + 2, (r["ev_time"], t0, t1)
    assert r["ev_time"] != int(r["ev_time"]) or r["start_time"].endswith(".000000"), r
    # a second cron run ships only the new rows
    want2 = gen(server, prefix, 6, 3)
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want + want2, "second run")
    # and a third with nothing new ships nothing again
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want + want2, "third run")


def test_daemon_mode_rows_once():
    server = db()
    d = lstest.tmpdir()
    cfg = make_conf(d, server)
    prefix = f"dm{RUN}"
    agent = lstest.Agent(cfg).start()
    want = []
    for wave in range(3):
        want += gen(server, prefix, wave * 10, 10)
        time.sleep(0.7)
    lstest.wait_until(lambda: set(markers(records(d), prefix)) >= set(want), timeout=30,
                      what="all rows delivered")
    assert agent.alive(), agent.log()[-2000:]
    # not linked (test_core checks that): the plugin loaded the client library
    assert any("libmariadb.so.3" in p for p in lstest.mapped_libs(agent.p.pid))
    rc = agent.stop()
    assert rc == 0, agent.log()[-2000:]
    assert_once(markers(records(d), prefix), want, "daemon")
    # the daemon rotated (the marker rows left slow_log)
    left = [m for m in server.slow_markers(prefix) if "SLEEP" in m]
    assert len(left) < len(want), left


def test_missing_client_library_is_a_clear_configuration_error():
    # a file the dynamic linker finds first but cannot load stands in for a missing package;
    # no server needed: the library is loaded when the configuration is checked
    d = lstest.tmpdir()
    lib = lstest.tmpdir()
    open(os.path.join(lib, "libmariadb.so.3"), "wb").close()
    cfg = lstest.conf(f"""
<source>
  @type rds_slowlog
  tag rds.slow
  host 127.0.0.1
  state_file {d}/state
</source>
<match rds.**>
  @type null
</match>
""", d)
    p = lstest.run(["-c", cfg, "--dry-run"], env=dict(os.environ, LD_LIBRARY_PATH=lib))
    assert p.returncode == 1, p.stderr
    assert re.search(r"configuration error: .*logship\.conf:2: cannot load libmariadb\.so\.3 "
                     r"\(install the Debian package libmariadb3\): .*libmariadb\.so\.3",
                     p.stderr), p.stderr


def test_time_zone_of_the_server():
    # the log tables hold local time of the server's zone; the event time must still be UTC
    server = db("tz9", ["--default-time-zone=+09:00"])
    d = lstest.tmpdir()
    cfg = make_conf(d, server)
    prefix = f"tz{RUN}"
    t0 = time.time()
    want = gen(server, prefix, 1, 2)
    t1 = time.time()
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = [r for r in records(d) if prefix in r.get("sql_text", "")
            and r["sql_text"].startswith("SELECT SLEEP")]
    assert len(recs) == 2, recs
    for r in recs:
        assert t0 - 2 <= r["ev_time"] <= t1 + 2, (r["ev_time"], t0, r["start_time"])
    assert_once(markers(recs, prefix), want)


def test_general_log_oneshot():
    server = db()
    d = lstest.tmpdir()
    cfg = make_conf(d, server, typ="rds_general_log", tag="rds.general")
    prefix = f"gl{RUN}"
    t0 = time.time()
    want = gen(server, prefix, 1, 4)
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = records(d)
    got = markers(recs, prefix, key="argument")
    assert_once(got, want, "general_log")
    r = next(x for x in recs if x.get("argument", "").endswith(f"'{prefix}-1'"))
    assert r["command_type"] == "Query", r
    assert isinstance(r["thread_id"], int) and isinstance(r["server_id"], int), r
    assert r["user"] == mariadb.USER, r
    assert abs(r["ev_time"] - t0) < 5, (r["ev_time"], t0)
    assert "event_time" in r, r
    want2 = gen(server, prefix, 5, 2)
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix, key="argument"), want + want2, "general_log 2")


def test_read_only_mode_no_rotation():
    server = db("ro")
    server.root_sql("DROP TABLE IF EXISTS mysql.slow_log_backup")
    d = lstest.tmpdir()
    cfg = make_conf(d, server, extra="rotate false")
    prefix = f"ro{RUN}"
    want = gen(server, prefix, 1, 5)
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want, "read-only 1")
    want += gen(server, prefix, 6, 5)
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want, "read-only 2")
    assert "slow_log_backup" not in str(server.root_sql("SHOW TABLES FROM mysql")), \
        "rotate false must not rotate"
    # a truncated table is detected (the watermark row is gone) and read from its start
    server.root_sql("SET GLOBAL slow_query_log=0; TRUNCATE TABLE mysql.slow_log; "
                    "SET GLOBAL slow_query_log=1;")
    want += gen(server, prefix, 11, 3)
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want, "read-only after truncate")


def test_lock_held_by_another_harvester():
    server = db()
    d = lstest.tmpdir()
    cfg = make_conf(d, server, extra="lock_timeout 1s")
    prefix = f"lk{RUN}"
    want = gen(server, prefix, 1, 3)
    server.rotate()     # the rows are in the backup now; a harvester must read them, not drop them
    before = backup_count(server)
    holder = subprocess.Popen([mariadb.CLIENT, "--no-defaults", "-S", server.socket, "-uroot",
                               "-e", "SELECT GET_LOCK('logship.slow_log', 0); SELECT SLEEP(30)"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lstest.wait_until(lambda: server.root_sql(
            "SELECT IS_USED_LOCK('logship.slow_log') IS NOT NULL")[0][0] == "1",
            what="lock taken")
        p = oneshot(cfg)
        assert p.returncode != 0, "must fail while another harvester holds the lock"
        assert "holds the lock" in p.stderr, p.stderr[-2000:]
        assert backup_count(server) == before, "no rotation without the lock"
        assert not markers(records(d), prefix)
    finally:
        holder.kill()
        holder.wait()
    lstest.wait_until(lambda: server.root_sql(
        "SELECT IS_USED_LOCK('logship.slow_log') IS NULL")[0][0] == "1", what="lock released")
    p = oneshot(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want, "after the lock was released")


def test_kill9_at_every_step_and_random_cron_runs():
    """Repeated cron runs killed at every step of the cycle and at random times: no row lost
    or duplicated. The plain rotate-then-read harvester, run on the same schedule, loses rows."""
    server = db("crash")
    d = lstest.tmpdir()
    cfg = make_conf(d, server)
    prefix = f"kc{RUN}"
    rng = random.Random(int(RUN, 16))
    points = ["salvaged", "rotated", "emitted", "committed"]
    schedule = []
    for pt in points:
        schedule += [pt, pt]          # twice: the second run after a crash resumes from it
    schedule += ["random"] * (12 if lstest.LONG else 6)
    want, n, killed = [], 1, 0
    for step in schedule:
        want += gen(server, prefix, n, 4)
        n += 4
        if step == "random":
            with open(f"{d}/runs.log", "a") as log:
                log.write(f"=== run {step} rows up to {n - 1}\n")
                log.flush()
                p = subprocess.Popen([lstest.LOGSHIP, "-c", cfg, "--oneshot"],
                                     stdout=subprocess.DEVNULL, stderr=log)
                time.sleep(rng.uniform(0.0, 0.4))
                if p.poll() is None:
                    p.kill()
                    killed += 1
                p.wait()
        else:
            p = oneshot(cfg, env={"LOGSHIP_TEST_RDS_KILL_AT": step})
            lstest.write(f"{d}/runs.log", f"=== run {step} rows up to {n - 1}\n{p.stderr}", "a")
            assert p.returncode == -signal.SIGKILL, (step, p.returncode, p.stderr[-2000:])
            killed += 1
    p = oneshot(cfg)
    lstest.write(f"{d}/runs.log", f"=== final run\n{p.stderr}", "a")
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want, f"after {killed} kills (logs: {d}/runs.log)")

    # the plain approach (rotate, read, ship), crashing on the same schedule: rows are lost
    nprefix = f"kn{RUN}"
    shipped, nwant, n = collections.Counter(), [], 1
    for step in schedule:
        nwant += gen(server, nprefix, n, 4)
        n += 4
        server.rotate()
        rows = [r[0] for r in server.root_sql(
            "SELECT sql_text FROM mysql.slow_log_backup WHERE sql_text LIKE 'SELECT SLEEP%'")]
        if step in ("rotated", "emitted") or step == "random" and rng.random() < 0.5:
            continue            # crashed after the rotation, before the rows were shipped
        for s in rows:
            m = re.search(r"'(" + nprefix + r"-\d+)'$", s)
            if m:
                shipped[m.group(1)] += 1
    server.rotate()
    for r in server.root_sql("SELECT sql_text FROM mysql.slow_log_backup"):
        m = re.search(r"'(" + nprefix + r"-\d+)'$", r[0])
        if m:
            shipped[m.group(1)] += 1
    lost = set(nwant) - set(shipped)
    assert lost, "the plain rotate-then-read schedule should have lost rows"


def test_failing_output_keeps_rows_and_stops_rotating():
    server = db("fail")
    d = lstest.tmpdir()
    prefix = f"fo{RUN}"
    extra = "wait_buffer_timeout 2s\n  batch_rows 5"
    buf = "total_limit_size 2k\n    chunk_limit_size 1k\n    retry_max_times 1"
    failing = make_conf(d, server, extra=extra, out_type="fault",
                        out_extra="fail_times 1000000", buf_extra=buf)
    want = gen(server, prefix, 1, 30)
    # run 1: the output fails, the buffer fills: the run fails and the rest stays in the backup
    p = oneshot(failing)
    assert p.returncode != 0, p.stderr[-2000:]
    backup_after_1 = backup_count(server)
    # run 2: still failing: the buffer is full, so no rotation at all
    want += gen(server, prefix, 31, 5)
    p = oneshot(failing)
    assert p.returncode != 0, p.stderr[-2000:]
    assert backup_count(server) == backup_after_1, "rotated while the buffer was full"
    live = [m for m in server.slow_markers(prefix) if m.startswith("SELECT SLEEP")]
    assert any(f"'{prefix}-31'" in m for m in live), "run-2 rows must still be in slow_log"
    assert not os.path.exists(f"{d}/out/rows.fault") or not markers(records(d), prefix)
    # run 3: the output works again: everything arrives exactly once
    healthy = make_conf(d, server, extra=extra, out_type="fault", out_extra="fail_times 0",
                        buf_extra=buf.replace("total_limit_size 2k", "total_limit_size 64k"))
    p = oneshot(healthy, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_once(markers(records(d), prefix), want, "after the output recovered")
