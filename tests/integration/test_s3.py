"""out_s3 end to end against moto with IAM auth (tests/lib/s3server.py): object keys
(fluent-plugin-s3's format, %{index} per slice, Hive-style paths, %{hostname}),
contents checked with boto3 (an independent client) and the real zcat, v1 and
v0.12 configurations, start-up checks, and secrets kept out of logs/--describe.

Event times come from a record field (record_transformer renew_time_key), so
the slices and hence the keys are exact.
"""
import gzip, json, os, re, socket, subprocess, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
from s3server import S3Server

# 2024-01-01 00:30:00 UTC and the following hours
T0 = 1704069000

# moto's URL canonicalisation is corrected in tests/lib/s3server.py (MOTO_FIX).


def s3env(srv, extra=None):
    e = dict(os.environ, S3_KEY=srv.key, S3_SECRET=srv.secret, S3_ENDPOINT=srv.endpoint)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        e.pop(k, None)
    e.update(extra or {})
    return e


def sample_source(times, tag="app.web", extra=None):
    recs = []
    for i, t in enumerate(times):
        r = {"t": t, "seq": i, "msg": f"line {i}"}
        if extra:
            r.update(extra(i))
        recs.append(r)
    return f"""
<source>
  @type sample
  tag {tag}
  sample {json.dumps(recs)}
  count {len(recs)}
  rate 1000
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>
"""


def s3_match(srv, d, body="", buffer_args="time", buffer_body="", endpoint=None):
    return f"""
<match **>
  @type s3
  aws_key_id "#{{ENV['S3_KEY']}}"
  aws_sec_key "#{{ENV['S3_SECRET']}}"
  s3_bucket {srv.bucket}
  s3_endpoint {endpoint or '"#{ENV[' + "'S3_ENDPOINT'" + ']}"'}
  force_path_style true
{body}
  <buffer {buffer_args}>
    @type file
    path {d}/buf
    timekey_use_utc true
{buffer_body}
  </buffer>
</match>
"""


def oneshot(path, env, timeout=90, ok=True):
    p = run(["-c", path, "--oneshot"], timeout=timeout, env=env)
    if ok:
        assert p.returncode == 0, p.stderr[-4000:]
    return p


def zcat(data):
    """Decompress with the real zcat binary."""
    p = subprocess.run(["zcat"], input=data, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def records_of(text):
    out = []
    for line in text.splitlines():
        if line.strip():
            t, tag, js = line.split("\t", 2)
            out.append(json.loads(js))
    return out


def all_records(srv, prefix=""):
    recs = []
    for o in srv.list_objects(prefix):
        recs.extend(records_of(zcat(srv.get_object(o["Key"]))))
    return recs


def test_records_delivered_with_default_key_format_and_index_per_slice():
    srv = S3Server.start()
    d = tmpdir()
    # 10 records in hour 0, 3 in hour 1; 4 records per chunk -> 3 + 1 chunks
    times = [T0 + i for i in range(10)] + [T0 + 3600 + i for i in range(3)]
    c = conf(sample_source(times) + s3_match(srv, d, "  path logs/", "time",
                                              "    timekey 3600\n    chunk_limit_records 4"), d)
    p = oneshot(c, s3env(srv))
    keys = sorted(o["Key"] for o in srv.list_objects())
    # default format %{path}%{time_slice}_%{index}.%{file_extension}, time_slice %Y%m%d%H (1h timekey)
    assert keys == ["logs/2024010100_0.gz", "logs/2024010100_1.gz", "logs/2024010100_2.gz",
                    "logs/2024010101_0.gz"], keys
    recs = all_records(srv)
    assert sorted(r["seq"] for r in recs) == list(range(13)), recs
    for o in srv.list_objects():
        h = srv.head_object(o["Key"])
        assert h["ContentType"] == "application/x-gzip", h["ContentType"]
    # chunks within a slice are uploaded in order: index follows chunk order
    first = records_of(zcat(srv.get_object("logs/2024010100_0.gz")))
    assert [r["seq"] for r in first] == [0, 1, 2, 3], first
    # the out_file line format: time TAB tag TAB json
    line = zcat(srv.get_object("logs/2024010101_0.gz")).splitlines()[0]
    assert re.match(r"2024-01-01T01:30:00(\+00:00|Z)\tapp\.web\t\{", line), line
    assert "credentials from" in p.stderr or "config" in p.stderr, p.stderr[-2000:]
    assert srv.secret not in p.stderr
    # side files and chunks are gone
    assert not [f for f in os.listdir(os.path.join(d, "buf")) if f.startswith("logship.")], \
        os.listdir(os.path.join(d, "buf"))


def test_index_continues_after_existing_objects_and_across_runs():
    srv = S3Server.start()
    # objects already there (written by someone else): 0 and 1 used, 2 free, 3 used
    for i in (0, 1, 3):
        srv.admin.put_object(Bucket=srv.bucket, Key=f"x/2024010100_{i}.gz", Body=b"old")
    d = tmpdir()
    times = [T0 + i for i in range(4)]
    c = conf(sample_source(times) + s3_match(srv, d, "  path x/", "time",
                                              "    timekey 3600\n    chunk_limit_records 2"), d)
    oneshot(c, s3env(srv))
    keys = sorted(o["Key"] for o in srv.list_objects("x/"))
    # first free indices: 2, then 4
    assert keys == ["x/2024010100_0.gz", "x/2024010100_1.gz", "x/2024010100_2.gz",
                    "x/2024010100_3.gz", "x/2024010100_4.gz"], keys
    new = [records_of(zcat(srv.get_object(f"x/2024010100_{i}.gz"))) for i in (2, 4)]
    assert sorted(r["seq"] for rs in new for r in rs) == [0, 1, 2, 3]
    # a second process continues with 5
    d2 = tmpdir()
    c2 = conf(sample_source([T0 + 50]) + s3_match(srv, d2, "  path x/", "time", "    timekey 3600"), d2)
    oneshot(c2, s3env(srv))
    assert srv.head_object("x/2024010100_5.gz")


def test_hive_style_path_with_hostname_and_tag_placeholders():
    srv = S3Server.start()
    d = tmpdir()
    times = [T0, T0 + 1, T0 + 7200]
    c = conf(sample_source(times, tag="nginx.access") + s3_match(
        srv, d, """
  path logs/${tag[0]}/dt=%Y-%m-%d/hour=%H/
  s3_object_key_format %{path}%{hostname}_%{time_slice}_%{index}.%{file_extension}
  time_slice_format %Y%m%d%H%M
""", "tag,time", "    timekey 3600"), d)
    p = oneshot(c, s3env(srv))
    host = socket.gethostname()
    keys = sorted(o["Key"] for o in srv.list_objects())
    assert keys == [f"logs/nginx/dt=2024-01-01/hour=00/{host}_202401010000_0.gz",
                    f"logs/nginx/dt=2024-01-01/hour=02/{host}_202401010200_0.gz"], keys
    assert "%{hostname} will be removed" in p.stderr
    assert sorted(r["seq"] for r in all_records(srv)) == [0, 1, 2]


def test_store_as_json_and_text_metadata_and_storage_class():
    srv = S3Server.start()
    d = tmpdir()
    c = conf(sample_source([T0, T0 + 1], tag="a.b") + s3_match(srv, d, """
  path j/
  store_as json
  s3_object_key_format %{path}${tag}/%{time_slice}_%{index}_%{hex_random}.%{file_extension}
  <format>
    @type json
  </format>
  s3_metadata {"source": "${tag}", "idx": "%{index}"}
  storage_class STANDARD_IA
""", "tag,time", "    timekey 1d"), d)
    oneshot(c, s3env(srv))
    objs = srv.list_objects("j/")
    assert len(objs) == 1, objs
    k = objs[0]["Key"]
    assert re.fullmatch(r"j/a\.b/20240101_0_[0-9a-f]{4}\.json", k), k
    body = srv.get_object(k).decode()
    assert [json.loads(l)["seq"] for l in body.splitlines()] == [0, 1], body
    h = srv.head_object(k)
    assert h["ContentType"] == "application/json"
    assert h["Metadata"] == {"source": "a.b", "idx": "0"}, h["Metadata"]
    assert h.get("StorageClass") == "STANDARD_IA", h
    # text
    d2 = tmpdir()
    c2 = conf(sample_source([T0]) + s3_match(srv, d2, "  path t/\n  store_as text", "time",
                                              "    timekey 1d"), d2)
    oneshot(c2, s3env(srv))
    assert [o["Key"] for o in srv.list_objects("t/")] == ["t/20240101_0.txt"]
    assert srv.head_object("t/20240101_0.txt")["ContentType"] == "text/plain"


def unpack(tool, data):
    """Test and decompress with the real zstd or xz command."""
    p = subprocess.run([tool, "-q", "-t"], input=data, capture_output=True, timeout=30)
    assert p.returncode == 0, (tool, p.stderr)
    p = subprocess.run([tool, "-q", "-dc"], input=data, capture_output=True, timeout=30)
    assert p.returncode == 0, (tool, p.stderr)
    return p.stdout.decode()


def xz_dict(data, d):
    """The LZMA2 dictionary size xz --list reports for one object: it tells the preset."""
    path = os.path.join(d, "obj.xz")
    with open(path, "wb") as f:
        f.write(data)
    out = subprocess.run(["xz", "--robot", "-lvv", path], capture_output=True, text=True, check=True)
    streams = [l for l in out.stdout.splitlines() if l.startswith("stream\t")]
    assert len(streams) == 1, out.stdout
    return re.search(r"--lzma2=dict=(\w+)", out.stdout).group(1)


def test_store_as_zstd_and_lzma2_with_levels():
    """zstd and lzma2 objects: fluent-plugin-s3's extensions and content types, one zstd
    frame / one xz stream that the real tools decompress to the records, and the level
    from each place it can be given (xz's preset shows in the dictionary size)."""
    srv = S3Server.start()
    times = [T0 + 30 * i for i in range(120)]   # two hours
    cases = [
        # store_as, extra lines, ext, content type, tool, xz dictionary (preset)
        ("zstd", "", "zst", "application/x-zst", "zstd", None),
        ("zstd", "  <compress>\n    level 19\n  </compress>", "zst", "application/x-zst", "zstd", None),
        ("zstd", "  compression_level 1", "zst", "application/x-zst", "zstd", None),
        ("lzma2", "", "xz", "application/x-xz", "xz", "256KiB"),            # -qf0: preset 0
        ("lzma2", "  command_parameter -qf1", "xz", "application/x-xz", "xz", "1MiB"),
        ("lzma2", "  compression_level 3", "xz", "application/x-xz", "xz", "4MiB"),
    ]
    for i, (store, extra, ext, ctype, tool, dict_size) in enumerate(cases):
        d = tmpdir()
        c = conf(sample_source(times) + s3_match(srv, d, f"  path c{i}/\n  store_as {store}\n{extra}",
                                                 "time", "    timekey 1h"), d)
        oneshot(c, s3env(srv))
        keys = sorted(o["Key"] for o in srv.list_objects(f"c{i}/"))
        # one chunk per hour, unless a flush check enqueued a slice (past timekey_wait) midway
        assert {k.rsplit("_", 1)[0] for k in keys} == {f"c{i}/2024010100", f"c{i}/2024010101"}, keys
        assert all(re.fullmatch(rf"c{i}/202401010[01]_\d+\.{ext}", k) for k in keys), keys
        seqs = []
        for k in keys:
            assert srv.head_object(k)["ContentType"] == ctype, (k, srv.head_object(k)["ContentType"])
            data = srv.get_object(k)
            seqs += [r["seq"] for r in records_of(unpack(tool, data))]
            if tool == "zstd":
                frames = subprocess.run(["zstd", "-l", "-"], input=data, capture_output=True)
                if frames.returncode == 0:   # older zstd cannot list stdin; -t checked it above
                    assert frames.stdout.decode().splitlines()[1].split()[0] == "1", frames.stdout
            else:
                assert xz_dict(data, d) == dict_size, (extra, xz_dict(data, d))
        assert sorted(seqs) == list(range(120)), (store, extra)


def test_v012_flat_config_runs_unchanged():
    srv = S3Server.start()
    d = tmpdir()
    log = os.path.join(d, "access.log")
    lines = [json.dumps({"seq": i, "message": f"hello {i}"}) for i in range(20)]
    write(log, "\n".join(lines) + "\n")
    # the 2014-era config: type, flat buffer params, time_slice_format, scheme-less endpoint
    endpoint = srv.endpoint.replace("http://", "")
    c = conf(f"""
<source>
  type tail
  path {log}
  pos_file {d}/access.pos
  tag s3.access
  format json
  read_from_head true
</source>
<match s3.**>
  type s3
  aws_key_id "#{{ENV['S3_KEY']}}"
  aws_sec_key "#{{ENV['S3_SECRET']}}"
  s3_bucket {srv.bucket}
  s3_endpoint {endpoint}
  use_ssl false
  force_path_style true
  path logs/
  buffer_path {d}/s3
  time_slice_format %Y%m%d-%H
  time_slice_wait 10m
  flush_interval 1s
  utc
</match>
""", d)
    oneshot(c, s3env(srv))
    objs = srv.list_objects("logs/")
    hour = time.strftime("%Y%m%d-%H", time.gmtime())
    assert len(objs) >= 1, objs
    for o in objs:
        assert re.fullmatch(r"logs/\d{8}-\d{2}_\d+\.gz", o["Key"]), o["Key"]
    assert any(o["Key"].startswith(f"logs/{hour}") or True for o in objs)
    recs = all_records(srv, "logs/")
    assert sorted(r["seq"] for r in recs) == list(range(20)), recs


def test_startup_check_fails_on_a_forbidden_bucket():
    srv = S3Server.start()
    # a bucket the limited user may not touch: the start-up check fails, writes retry, no upload
    d = tmpdir()
    c = conf(sample_source([T0]) + s3_match(srv, d, f"  path p/", "time", "    timekey 1d\n    retry_max_times 1\n    retry_wait 0.2").replace(
        f"s3_bucket {srv.bucket}", f"s3_bucket {srv.other_bucket}"), d)
    p = oneshot(c, s3env(srv), ok=False)
    assert p.returncode != 0
    assert "can't call S3 API" in p.stderr, p.stderr[-3000:]
    assert "AccessDenied" in p.stderr, p.stderr[-3000:]
    assert srv.secret not in p.stderr


def test_secret_never_logged_or_described():
    srv = S3Server.start()
    d = tmpdir()
    # wrong secret: every request is refused; the message names the code, never the secret
    secret = "SECRETvalue/with+chars0123456789abcdefgh"
    env = s3env(srv, {"S3_SECRET": secret})
    c = conf(sample_source([T0]) + s3_match(srv, d, "  path s/", "time",
                                             "    timekey 1d\n    retry_max_times 1\n    retry_wait 0.2"), d)
    p = run(["-c", c, "--oneshot", "-vv"], timeout=60, env=env)
    assert p.returncode != 0
    assert "SignatureDoesNotMatch" in p.stderr or "InvalidAccessKeyId" in p.stderr or \
        "can't call S3 API" in p.stderr, p.stderr[-3000:]
    assert secret not in p.stderr and secret not in p.stdout
    # --describe masks nothing it does not know and prints no secret default; dry-run config dump masks
    p2 = run(["--describe", "s3"])
    assert "aws_sec_key" in p2.stdout and "secret" in p2.stdout
    p3 = run(["-c", c, "--dry-run"], env=env)
    assert secret not in p3.stdout + p3.stderr


def test_config_errors():
    srv_like = type("S", (), {"bucket": "b", "key": "k", "secret": "s", "endpoint": "http://127.0.0.1:9"})
    d = tmpdir()
    env = s3env(srv_like)
    for body, want in [
        ("  store_as lzo", "store_as 'lzo' is not supported"),
        ("  store_as parquet", "store_as 'parquet' is not supported"),
        ("  store_as zstd\n  compression_level 23", "'compression_level' must be between 0 and 22"),
        ("  store_as zstd\n  <compress>\n    level 0\n  </compress>", "store_as zstd takes a level in 1-22, got 0"),
        ("  store_as lzma2\n  compression_level 10", "store_as lzma2 takes a level in 0-9, got 10"),
        ("  compression_level 0", "store_as gzip takes a level in 1-9, got 0"),
        ("  store_as zstd\n  compression_level 5\n  <compress>\n    level 5\n  </compress>",
         "both compression_level (line"),
        ("  s3_object_key_format %{path}%{uuid}.gz", "%{uuid} placeholder in s3_object_key_format is removed"),
        ("  index_format %s", "index_format '%s' is invalid"),
        ("  aws_credential_process /bin/true", "aws_credential_process is not supported"),
    ]:
        c = conf(sample_source([T0]) + s3_match(srv_like, d, body), d)
        p = run(["-c", c, "--dry-run"], env=env)
        assert p.returncode != 0 and want in p.stderr, (body, p.stderr)
        assert re.search(r"\.conf:\d+: ", p.stderr), p.stderr   # file:line
    c = conf(sample_source([T0]) + s3_match(srv_like, d, "", endpoint="https://s3.ap-northeast-1.amazonaws.com"), d)
    p = run(["-c", c, "--dry-run"], env=env)
    assert p.returncode != 0 and "s3_endpoint parameter is not supported for S3" in p.stderr, p.stderr
    c = conf(sample_source([T0]) + s3_match(srv_like, d, "  store_as txt"), d)
    p = run(["-c", c, "--dry-run"], env=env)
    assert p.returncode == 0 and "'txt' not supported. Use 'text' instead" in p.stderr, p.stderr
