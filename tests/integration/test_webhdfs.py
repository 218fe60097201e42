"""@type webhdfs (fluent-plugin-webhdfs, bundled with td-agent): chunks appended to files on
HDFS through the WebHDFS REST API (namenode redirect to a datanode) or HttpFS, against the
stand-in of tests/lib/hdfsserver.py. Checked record by record, including the faults where the
plugin duplicates or overwrites a chunk: an append whose answer is lost, an append cut short,
two writers creating one file."""
import gzip, json, os, subprocess, time

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
from hdfsserver import HDFSServer

ENV = dict(os.environ, TZ="Asia/Tokyo")
# the lines' times are UTC (the plugin's <format> default); the path's time slice is local,
# as the buffer's timekey is (timekey_use_utc false): 03:04 UTC is 12:04 in Tokyo
T0 = 1704164645        # 2024-01-02T03:04:05Z


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def hdfs_conf(d, srv, out="", buf="", path="/logs/%Y%m%d_%H/${tag}.log"):
    return conf(f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/pos
  read_from_head true
  tag app.web
  <parse>
    @type json
    time_key t
    time_type float
  </parse>
</source>
<match app.**>
  @type webhdfs
  namenode 127.0.0.1:{srv.port}
  path {path}
  {out}
  <buffer time,tag>
    @type file
    path {d}/buf
    timekey_wait 0s
    flush_mode interval
    flush_interval 0.3s
    retry_wait 0.2s
    retry_max_interval 0.5s
    {buf}
  </buffer>
</match>
""", d)


def recs(a, b, t=T0):
    return [{"t": t + i, "n": i, "msg": f"line {i}"} for i in range(a, b)]


def lines_of(data, gz=False):
    if gz:
        try:
            data = gzip.decompress(data)  # every gzip member, as zcat reads them
        except EOFError:
            return []                     # a member cut short (the fault), not cut back yet
    return data.decode().splitlines()


def nums(lines):
    return [json.loads(l.split("\t", 2)[2])["n"] for l in lines]


def once(got, want, what):
    dup = sorted({n for n in got if got.count(n) > 1})
    missing = sorted(set(want) - set(got))
    assert not dup and not missing, f"{what}: {len(dup)} duplicates (first {dup[:5]}), " \
                                    f"{len(missing)} missing (first {missing[:5]})"


def test_append_out_file_lines_in_utc_under_the_time_slice_path():
    srv = HDFSServer()
    d = tmpdir()
    try:
        log(d, recs(0, 50))
        a = Agent(hdfs_conf(d, srv, out="username loguser"), env=ENV).start()
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: len(lines_of(srv.data(p))) >= 50, 20, what="50 lines in HDFS")
        log(d, recs(50, 80))
        wait_until(lambda: len(lines_of(srv.data(p))) >= 80, 20, what="80 lines in HDFS")
        a.stop()
        lines = lines_of(srv.data(p))
        once(nums(lines), range(80), "appended")
        t, tag, rec = lines[0].split("\t", 2)
        assert t == "2024-01-02T03:04:05Z" and tag == "app.web", lines[0]
        assert json.loads(rec) == {"n": 0, "msg": "line 0"}, rec
        # the namenode was asked, and redirected the data to the datanode
        creates, appends = srv.ops("CREATE"), srv.ops("APPEND")
        assert creates and creates[0][0] == "nn" and creates[0][3]["overwrite"] == "false"
        assert [r for r in creates if r[0] == "dn" and r[4] == "application/octet-stream"]
        assert appends and all(r[3].get("user.name") == "loguser" for r in appends)
        assert "webhdfs connection confirmed" in a.log()
    finally:
        srv.stop()


def test_v012_output_data_type_json_lines_and_null_value():
    """The v0.12 parameters, as the plugin's compat layer reads them: the time (UTC) and the
    tag before the JSON, joined by field_separator, and nil values written as "NULL"."""
    srv = HDFSServer()
    d = tmpdir()
    try:
        write(os.path.join(d, "in.log"), json.dumps({"t": T0, "n": 0, "x": None, "y": [None]})
              + "\n")
        a = Agent(hdfs_conf(d, srv, out="output_data_type json\noutput_include_tag false\n"
                            "field_separator COMMA"), env=ENV).start()
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: srv.data(p), 20, what="the line")
        a.stop()
        assert srv.data(p) == b'2024-01-02T03:04:05Z,{"n":0,"x":"NULL","y":[null]}\n', \
            srv.data(p)
    finally:
        srv.stop()


def test_lost_answer_and_cut_append_neither_duplicated_nor_left_half():
    """The plugin appends a chunk again after a lost answer (a duplicate) or a write cut
    short (half a chunk, then all of it). Here the file is read back at the length it had
    before the append: the chunk is there (done), or a part of it (cut back with TRUNCATE,
    then appended again)."""
    srv = HDFSServer()
    d = tmpdir()
    try:
        a = Agent(hdfs_conf(d, srv, out="compress gzip"), env=ENV).start()
        p = "/logs/20240102_12/app.web.log.gz"
        n = 0
        for fault in ("lose_answers", "partial", "lose_answers", "partial", None):
            if fault:
                setattr(srv, fault, 1)
            log(d, recs(n, n + 40))
            n += 40
            wait_until(lambda: len(lines_of(srv.data(p), gz=True)) >= n and
                       srv.lose_answers == 0 and srv.partial == 0, 20,
                       what=f"{n} lines after {fault}")
            time.sleep(0.8)
        a.stop()
        once(nums(lines_of(srv.data(p), gz=True)), range(n), "through lost and cut appends")
        assert a.log().count("not appended again") == 2, lstest.tail_text(a.log(), 30)
        assert a.log().count("cut back to") == 2, lstest.tail_text(a.log(), 30)
        assert len(srv.ops("TRUNCATE")) == 2
    finally:
        srv.stop()


def test_kill9_after_the_append_before_the_chunk_was_forgotten():
    """The chunk's state (the file's length before its append) is kept with the file buffer:
    a restart after kill -9 finds the chunk in the file and does not append it again."""
    srv = HDFSServer()
    d = tmpdir()
    try:
        srv.lose_answers = 1          # the append applied, its answer never comes
        log(d, recs(0, 30))
        cfg = hdfs_conf(d, srv, buf="retry_wait 30s")
        a = Agent(cfg, env=ENV).start()
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: len(lines_of(srv.data(p))) >= 30 and srv.lose_answers == 0, 20,
                   what="the append applied")
        a.kill9()
        a.out.close()
        a.err.close()
        a = Agent(hdfs_conf(d, srv), env=ENV).start()
        log(d, recs(30, 40))
        wait_until(lambda: len(lines_of(srv.data(p))) >= 40, 20, what="40 lines")
        time.sleep(1)
        a.stop()
        once(nums(lines_of(srv.data(p))), range(40), "a restart after the lost answer")
        assert "not appended again" in a.log(), lstest.tail_text(a.log(), 30)
    finally:
        srv.stop()


def test_another_writer_creates_the_file_first_and_the_chunk_is_appended():
    """Both writers found the path absent. The plugin creates with the server's default
    overwrite=true: the later create replaces the earlier writer's data. Here the create says
    overwrite=false, and on FileAlreadyExistsException the chunk is appended."""
    srv = HDFSServer()
    d = tmpdir()
    try:
        srv.race_create = b"other writer\n"
        log(d, recs(0, 20))
        a = Agent(hdfs_conf(d, srv), env=ENV).start()
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: len(lines_of(srv.data(p))) >= 21, 20, what="21 lines")
        a.stop()
        lines = lines_of(srv.data(p))
        assert lines[0] == "other writer", lines[:2]
        once(nums(lines[1:]), range(20), "after the other writer's create")
    finally:
        srv.stop()


def test_one_file_per_chunk_with_chunk_id_and_uuid_stable_across_retries():
    srv = HDFSServer()
    d = tmpdir()
    try:
        srv.lose_answers = 1
        log(d, recs(0, 25))
        a = Agent(hdfs_conf(d, srv, out="append false\ncompress zstd",
                            path="/raw/${tag}/%Y/${chunk_id}-%{uuid_flush}"), env=ENV).start()
        wait_until(lambda: len(srv.ops("CREATE")) >= 4 and srv.lose_answers == 0, 20,
                   what="the create retried")
        assert not srv.ops("APPEND") and not srv.ops("GETFILESTATUS")
        a.stop()
        names = [p for p in srv.files if p.startswith("/raw/app.web/2024/")]
        assert len(names) == 1 and names[0].endswith(".zst"), names
        chunk = names[0].rsplit("/", 1)[1][:32]
        uuid = names[0].rsplit("/", 1)[1][33:-4]
        assert uuid.replace("-", "") == chunk, names[0]
        assert {r[3]["overwrite"] for r in srv.ops("CREATE") if r[0] == "nn"} == {"true"}
        z = subprocess.run(["zstd", "-dc"], input=srv.data(names[0]), capture_output=True,
                           check=True)
        once(nums(z.stdout.decode().splitlines()), range(25), "one file per chunk")
    finally:
        srv.stop()


def test_httpfs_takes_the_data_in_one_request():
    srv = HDFSServer(httpfs=True)
    d = tmpdir()
    try:
        log(d, recs(0, 15))
        a = Agent(hdfs_conf(d, srv, out="httpfs true"), env=ENV).start()
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: len(lines_of(srv.data(p))) >= 15, 20, what="15 lines over HttpFS")
        a.stop()
        once(nums(lines_of(srv.data(p))), range(15), "httpfs")
        assert all(r[0] == "nn" and r[3].get("data") == "true" for r in srv.ops("CREATE"))
    finally:
        srv.stop()


def test_standby_namenode_takes_over():
    active, standby = HDFSServer(), HDFSServer()
    d = tmpdir()
    try:
        log(d, recs(0, 10))
        a = Agent(hdfs_conf(d, active, out=f"standby_namenode 127.0.0.1:{standby.port}"),
                  env=ENV).start()
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: len(lines_of(active.data(p))) >= 10, 20, what="10 lines")
        active.standby = True          # a failover: the old active is the standby now
        log(d, recs(10, 30))
        wait_until(lambda: len(lines_of(standby.data(p))) >= 20, 20,
                   what="the rest on the other namenode")
        a.stop()
        once(nums(lines_of(active.data(p))) + nums(lines_of(standby.data(p))), range(30),
             "across the failover")
        assert "Seems the connected host status is not active" in a.log()
    finally:
        active.stop()
        standby.stop()


def test_namenode_down_at_start_fails_unless_ignore_start_check_error():
    d = tmpdir()
    srv = HDFSServer()
    srv.stop()                    # its port, with nobody listening
    log(d, recs(0, 10))
    a = Agent(hdfs_conf(d, srv), env=ENV).start()
    rc = a.wait(30)
    assert rc != 0 and "webhdfs is not available now" in a.log(), (rc, a.log())
    # with ignore_start_check_error: starts, retries, and delivers once the namenode is up
    up = None
    try:
        a = Agent(hdfs_conf(d, srv, out="ignore_start_check_error true"), env=ENV).start()
        wait_until(lambda: "failed to communicate hdfs cluster" in a.log(), 20,
                   what="a failed write")
        up = HDFSServer(port=srv.port)
        p = "/logs/20240102_12/app.web.log"
        wait_until(lambda: len(lines_of(up.data(p))) >= 10, 30, what="10 lines once up")
        a.stop()
        once(nums(lines_of(up.data(p))), range(10), "after the namenode came up")
    finally:
        if up:
            up.stop()


def test_configuration_errors():
    d = tmpdir()
    srv_port = 1
    cases = [
        ("kerberos true", "kerberos (SPNEGO) is not supported"),
        ("compress snappy", "compress snappy is not supported"),
        ("append false", "path must contain ${chunk_id}"),
        ("remove_prefix app", "use @label for routing"),
        ("output_data_type json\n  field_separator SOH", "field_separator 'SOH' is not"),
        ("output_data_type ltsv", "output_data_type 'ltsv' is not supported"),
    ]
    for extra, want in cases:
        c = conf(f"""
<source>
  @type dummy
  tag app.x
</source>
<match app.**>
  @type webhdfs
  namenode 127.0.0.1:{srv_port}
  path /logs/%Y%m%d
  {extra}
</match>
""", d)
        p = run(["--dry-run", "-c", c])
        assert p.returncode != 0 and want in p.stderr and ".conf:" in p.stderr, (extra, p.stderr)
    for bad, want in [("namenode nohost", "needs NAMENODE_HOST:PORT"),
                      ("namenode 127.0.0.1:1\n  path logs/x", "MUST starts with '/'"),
                      ("port 50070", "WebHDFS host or namenode missing")]:
        c = conf(f"""
<match app.**>
  @type webhdfs
  {bad}
  {"" if "path" in bad else "path /logs/x"}
</match>
""", d)
        p = run(["--dry-run", "-c", c])
        assert p.returncode != 0 and want in p.stderr, (bad, p.stderr)
