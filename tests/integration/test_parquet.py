"""Parquet written by logship, read back by an independent engine: DuckDB (tests/lib/duckdb.py).

out_file with the parquet formatter and out_s3 with store_as parquet: the rows, column types
and values DuckDB returns equal the records that went in (every page codec; nulls, empty and
multi-byte strings, strings over 4 KiB, invalid UTF-8 repaired), Hive partitions read with
hive_partitioning, row-group statistics that let a query on one status code skip row groups,
schemas from Avro / BigQuery files, inline and from the parser, and records that do not fit
the schema routed to @ERROR instead of being lost.
"""
import glob, json, os, re
import duckdb
from lstest import conf, run, tmpdir, write
from s3server import S3Server

T0 = 1704069000  # 2024-01-01 00:30:00 UTC


def oneshot(path, env=None, ok=True):
    p = run(["-c", path, "--oneshot"], timeout=120, env=env)
    if ok:
        assert p.returncode == 0, p.stderr[-4000:]
    return p


def sample(recs, tag="app"):
    return f"""
<source>
  @type sample
  tag {tag}
  sample {json.dumps(recs)}
  count {len(recs)}
  rate 100000
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>
"""


def file_match(d, fmt, pattern="app", extra=""):
    return f"""
<match {pattern}>
  @type file
  path {d}/out/x
  path_suffix .parquet
  <format>
    @type parquet
{fmt}
  </format>
  <buffer time>
    @type file
    path {d}/buf
    timekey 1d
    timekey_use_utc true
    # the slices are in the past: without a wait each batch would be flushed as it comes
    timekey_wait 36500d
{extra}
  </buffer>
</match>
"""


def error_label(d):
    return f"""
<label @ERROR>
  <match **>
    @type file
    path {d}/err/e
    <format>
      @type json
    </format>
    <buffer>
      flush_mode immediate
    </buffer>
  </match>
</label>
"""


def ts(t):
    """DuckDB's rendering of a TIMESTAMP WITH TIME ZONE in UTC (millisecond precision)."""
    import datetime
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    s = dt.strftime("%Y-%m-%d %H:%M:%S")
    ms = round((t - int(t)) * 1000)
    return s + (f".{ms:03d}".rstrip("0") if ms else "") + "+00"


def files(d):
    return sorted(glob.glob(os.path.join(d, "out", "*.parquet")))


def odd_records():
    recs = []
    for i in range(300):
        r = {"t": T0 + i, "seq": i}
        if i % 3:
            r["msg"] = ["", "plain", "日本語のログ ✓", "x" * 5000, f"high-{i}"][i % 5]
        if i % 7:
            r["code"] = [200, 404, 503][i % 3]
        if i % 2:
            r["ratio"] = i / 8
        r["ok"] = bool(i % 4) if i % 5 else None
        recs.append(r)
    return recs


def expect(r):
    return {"time": ts(r["t"]), "seq": str(r["seq"]), "msg": r.get("msg"), "code": r.get("code"),
            "ratio": r.get("ratio"), "ok": r.get("ok")}


def test_out_file_round_trip_every_codec():
    recs = odd_records()
    schema = "    schema seq:integer,msg:string,code:int,ratio:float,ok:bool\n"
    for codec in ("snappy", "zstd", "gzip", "none"):
        d = tmpdir()
        # a small row group: the chunk becomes several row groups, pages cut often
        c = conf(sample(recs) + file_match(d, schema + f"    compression {codec}\n"
                                           "    row_group_size 8k\n    page_size 1k"), d)
        oneshot(c)
        fs = files(d)
        assert len(fs) == 1, fs
        got, meta, fm = duckdb.query(
            f"SELECT * FROM read_parquet('{fs[0]}') ORDER BY seq",
            f"SELECT DISTINCT compression FROM parquet_metadata('{fs[0]}')",
            f"SELECT created_by, num_rows, num_row_groups FROM parquet_file_metadata('{fs[0]}')")
        fm = fm[0]
        want = [expect(r) for r in recs]
        for g, w in zip(got, want):
            if g["ratio"] is not None:
                g["ratio"] = float(g["ratio"])
            assert g == w, (codec, g, w)
        assert len(got) == len(want)
        assert [m["compression"] for m in meta] == [codec.upper() if codec != "none"
                                                    else "UNCOMPRESSED"], meta
        assert re.match(r"logship version \S+ \(build \S+\)", fm["created_by"]), fm
        assert fm["num_rows"] == "300" and int(fm["num_row_groups"]) > 1, fm


def test_skewed_dictionaries_in_frequency_order_read_back():
    """Dictionaries are renumbered by frequency (300 distinct strings, 40 distinct ints, a few
    values most of the rows): DuckDB reads every value back, and the most frequent value is the
    dictionary's first entry."""
    import random
    rnd = random.Random(7)
    recs = []
    for i in range(3000):
        host = "hot-%d" % rnd.randrange(3) if rnd.random() < 0.7 else "h%03d" % rnd.randrange(300)
        if i == 0:
            host = "hot-9"      # seen first, once: first-seen order would put it first
        recs.append({"t": T0 + i, "seq": i, "host": host,
                     "port": 443 if rnd.random() < 0.6 else 8000 + rnd.randrange(40)})
    d = tmpdir()
    c = conf(sample(recs) + file_match(d, "    schema seq:integer,host:string,port:integer\n"
                                          "    compression none\n"), d)
    oneshot(c)
    fs = files(d)
    assert len(fs) == 1, fs
    got, enc = duckdb.query(f"SELECT seq, host, port FROM read_parquet('{fs[0]}') ORDER BY seq",
                            f"SELECT path_in_schema, encodings FROM parquet_metadata('{fs[0]}')")
    assert [(int(g["seq"]), g["host"], int(g["port"])) for g in got] == \
        [(r["seq"], r["host"], r["port"]) for r in recs]
    encs = {e["path_in_schema"]: e["encodings"] for e in enc}
    assert "RLE_DICTIONARY" in encs["host"] and "RLE_DICTIONARY" in encs["port"], encs
    # uncompressed: the host dictionary page's first PLAIN entry is the most frequent value
    counts = {}
    for r in recs:
        counts[r["host"]] = counts.get(r["host"], 0) + 1
    top = max(counts, key=lambda h: (counts[h], -recs.index(next(x for x in recs if x["host"] == h))))
    blob = open(fs[0], "rb").read()
    assert len(top).to_bytes(4, "little") + top.encode() in blob
    first_dict_entry = blob.find(b"\x05\x00\x00\x00hot-")
    assert blob[first_dict_entry + 4:first_dict_entry + 9].decode() == top, (top, counts)


def test_types_and_annotations_as_declared():
    d = tmpdir()
    c = conf(sample([{"t": T0, "seq": 1, "msg": "a", "code": 200, "ratio": 0.5, "ok": True}])
             + file_match(d, "    schema seq:integer,msg:string,code:int,ratio:float,ok:bool\n"
                             "    timestamp_unit micros"), d)
    oneshot(c)
    f = files(d)[0]
    sch = {r["name"]: r for r in duckdb.rows(
        f"SELECT name, type, repetition_type, converted_type, logical_type FROM parquet_schema('{f}')")}
    assert sch["time"]["type"] == "INT64" and sch["time"]["repetition_type"] == "REQUIRED"
    assert sch["time"]["converted_type"] == "TIMESTAMP_MICROS", sch["time"]
    assert "isAdjustedToUTC=1" in sch["time"]["logical_type"], sch["time"]
    assert (sch["seq"]["type"], sch["code"]["type"], sch["ratio"]["type"], sch["ok"]["type"]) == \
        ("INT64", "INT32", "DOUBLE", "BOOLEAN")
    assert sch["msg"]["converted_type"] == "UTF8" and sch["msg"]["repetition_type"] == "OPTIONAL"
    types = duckdb.rows(f"SELECT typeof(time) a, typeof(code) b, typeof(msg) c "
                        f"FROM read_parquet('{f}')")[0]
    assert types == {"a": "TIMESTAMP WITH TIME ZONE", "b": "INTEGER", "c": "VARCHAR"}, types


def test_nginx_parser_schema_with_invalid_utf8_and_refused_records_to_error():
    d = tmpdir()
    lines = []
    for i in range(50):
        agent = "Mozilla \xe9t\xe9" if i == 7 else "curl/8"
        lines.append(f'10.0.0.{i} - - [01/Jan/2024:00:30:{i:02d} +0000] "GET /p{i % 5} HTTP/1.1" '
                     f'{[200, 404][i % 2]} {100 + i} "-" "{agent}"')
    # status that is not a number: refused by the schema, goes to @ERROR
    lines.append('10.0.0.99 - - [01/Jan/2024:00:31:00 +0000] "GET /bad HTTP/1.1" abc 1 "-" "x"')
    log = os.path.join(d, "access.log")
    with open(log, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("latin-1"))
    c = conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/pos
  read_from_head true
  tag app
  <parse>
    @type nginx
  </parse>
</source>
""" + file_match(d, "    schema_parser nginx\n    compression zstd") + error_label(d), d)
    p = oneshot(c)
    assert "does not fit the Parquet schema: column 'code'" in p.stderr, p.stderr[-2000:]
    f = files(d)[0]
    got = duckdb.rows(f"SELECT remote, path, code, size, agent, time FROM read_parquet('{f}') "
                      f"ORDER BY time")
    assert len(got) == 50, got
    for i, g in enumerate(got):
        assert g["remote"] == f"10.0.0.{i}" and g["path"] == f"/p{i % 5}", g
        assert g["code"] == str([200, 404][i % 2]) and g["size"] == str(100 + i), g
        assert g["time"] == ts(T0 + i), g
    # invalid UTF-8 became U+FFFD: DuckDB refuses invalid UTF-8 in STRING columns
    assert got[7]["agent"] == "Mozilla \ufffdt\ufffd", got[7]
    errs = [json.loads(x) for p_ in glob.glob(f"{d}/err/e.*") for x in open(p_)]
    assert [e["path"] for e in errs] == ["/bad"], errs


def test_row_group_statistics_let_a_status_query_skip_row_groups():
    d = tmpdir()
    # an hour of traffic, status changing every 1000 rows: row groups of about 1000 rows
    recs = [{"t": T0 + i // 4, "code": [200, 301, 404, 503][i // 1000], "path": f"/p{i % 50}"}
            for i in range(4000)]
    c = conf(sample(recs) + file_match(d, "    schema code:integer,path:string\n"
                                          "    row_group_size 12k"), d)
    oneshot(c)
    f = files(d)[0]
    groups = duckdb.rows(f"SELECT row_group_id, stats_min_value mn, stats_max_value mx, "
                         f"stats_null_count nc FROM parquet_metadata('{f}') "
                         f"WHERE path_in_schema = 'code' ORDER BY row_group_id")
    assert len(groups) >= 4, groups
    with_503 = [g for g in groups if int(g["mn"]) <= 503 <= int(g["mx"])]
    assert 0 < len(with_503) < len(groups) / 2, groups
    assert all(g["nc"] == "0" for g in groups), groups
    # DuckDB prunes by those statistics: a value outside every group's range scans no row
    none = duckdb.profile(f"SELECT count(*) FROM read_parquet('{f}') WHERE code = 999", d)
    some = duckdb.profile(f"SELECT count(*) FROM read_parquet('{f}') WHERE code = 503", d)
    assert none["cumulative_rows_scanned"] == 0, none
    assert some["cumulative_rows_scanned"] > 0, some
    got = duckdb.rows(f"SELECT count(*) n FROM read_parquet('{f}') WHERE code = 503")[0]
    assert got["n"] == "1000", got


def test_schema_files_avro_and_bigquery_required_fields():
    d = tmpdir()
    avsc = write(os.path.join(d, "s.avsc"), json.dumps({
        "type": "record", "name": "log", "fields": [
            {"name": "host", "type": "string"},
            {"name": "Status", "type": ["null", "int"]},
            {"name": "bytes", "type": ["null", "long"]},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}))
    bq = write(os.path.join(d, "s.json"), json.dumps([
        {"name": "host", "type": "STRING", "mode": "REQUIRED"},
        {"name": "Status", "type": "INTEGER"}, {"name": "bytes", "type": "INTEGER"}]))
    recs = [{"t": T0, "host": "a", "Status": 200, "bytes": 5},
            {"t": T0 + 1, "Status": 404},                    # no host: required, refused
            {"t": T0 + 2, "host": "c", "Status": "x"}]       # wrong type: refused
    for kind, path, tcol in (("avro", avsc, "ts"), ("bigquery", bq, "time")):
        dd = tmpdir()
        c = conf(sample(recs) + file_match(dd, f"    schema_file {path}\n    schema_type {kind}\n"
                                               f"    time_column {tcol}") + error_label(dd), dd)
        oneshot(c)
        got = duckdb.rows(f"SELECT * FROM read_parquet('{files(dd)[0]}')")
        # column names are lowercased (Trino and Athena lowercase them); Avro int is INT32,
        # BigQuery INTEGER INT64 (DuckDB renders BIGINT as a string); the time column is
        # the Avro timestamp-millis field, or first when the schema has none
        if kind == "avro":
            want = [{"host": "a", "status": 200, "bytes": "5", "ts": ts(T0)}]
        else:
            want = [{"time": ts(T0), "host": "a", "status": "200", "bytes": "5"}]
        assert got == want and list(got[0]) == list(want[0]), (kind, got)
        errs = sorted(json.loads(x)["t"] for p_ in glob.glob(f"{dd}/err/e.*") for x in open(p_))
        assert errs == [T0 + 1, T0 + 2], (kind, errs)


def test_bad_schemas_are_configuration_errors_with_file_and_line():
    d = tmpdir()
    bad = write(os.path.join(d, "bad.avsc"), '{"type": "record", "fields": '
                '[{"name": "m", "type": {"type": "map", "values": "string"}}]}')
    for fmt, msg in ((f"    schema_file {bad}", r"Avro field 'm'"),
                     ("    schema a:integer,b:nope", r"unknown type 'nope'"),
                     ("    schema_parser nosuch", r"schema_parser 'nosuch'"),
                     ("", r"a schema is needed")):
        c = conf(sample([{"t": T0}]) + file_match(d, fmt), d)
        p = run(["-c", c, "--dry-run"])
        assert p.returncode == 1, p.stderr
        assert re.search(r"logship\.conf:\d+: .*" + msg, p.stderr), (fmt, p.stderr[-1500:])


def test_out_file_refuses_compress_and_append_with_parquet():
    d = tmpdir()
    for extra, key in (("  compress gzip\n", "compress"), ("  compress zstd\n", "compress"),
                       ("  append true\n", "append")):
        c = conf(sample([{"t": T0}]) + file_match(d, "    schema a:string").replace(
            "  path_suffix .parquet\n", "  path_suffix .parquet\n" + extra), d)
        p = run(["-c", c, "--dry-run"])
        assert p.returncode == 1, p.stderr
        assert re.search(rf"logship\.conf:\d+: the parquet formatter writes whole parquet files: "
                         rf"'{key}' cannot be used", p.stderr), p.stderr[-1500:]


def test_s3_store_as_parquet_hive_partitions():
    srv = S3Server.start()
    d = tmpdir()
    recs = [{"t": T0 + h * 3600 + i, "code": [200, 500][i % 2], "path": f"/x{i}"}
            for h in range(2) for i in range(20)]
    avsc = write(os.path.join(d, "s.avsc"), json.dumps({
        "type": "record", "name": "log", "fields": [
            {"name": "code", "type": ["null", "int"]}, {"name": "path", "type": ["null", "string"]}]}))
    c = conf(sample(recs) + f"""
<match app>
  @type s3
  aws_key_id "#{{ENV['S3_KEY']}}"
  aws_sec_key "#{{ENV['S3_SECRET']}}"
  s3_bucket {srv.bucket}
  s3_endpoint "#{{ENV['S3_ENDPOINT']}}"
  force_path_style true
  path logs/
  s3_object_key_format %{{path}}dt=%Y-%m-%d/hour=%H/%{{index}}.%{{file_extension}}
  store_as parquet
  <compress>
    parquet_compression_codec zstd
    level 9
    schema_type avro
    schema_file {avsc}
  </compress>
  <buffer time>
    @type file
    path {d}/buf
    timekey 3600
    timekey_use_utc true
    timekey_wait 36500d
  </buffer>
</match>
""", d)
    env = dict(os.environ, S3_KEY=srv.key, S3_SECRET=srv.secret, S3_ENDPOINT=srv.endpoint)
    p = oneshot(c, env)
    assert "is not used" not in p.stderr, p.stderr[-3000:]    # level: the page codec's
    keys = sorted(o["Key"] for o in srv.list_objects())
    assert keys == ["logs/dt=2024-01-01/hour=00/0.parquet",
                    "logs/dt=2024-01-01/hour=01/0.parquet"], keys
    local = os.path.join(d, "dl")
    for k in keys:
        assert srv.head_object(k)["ContentType"] == "application/vnd.apache.parquet"
        p = os.path.join(local, k)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(srv.get_object(k))
    got = duckdb.rows(f"SELECT code, path, time FROM read_parquet('{local}/logs/*/*/*.parquet', "
                      f"hive_partitioning = true) ORDER BY time")
    assert [(g["code"], g["path"], g["time"]) for g in got] == \
        [([200, 500][i % 2], f"/x{i}", ts(T0 + h * 3600 + i)) for h in range(2) for i in range(20)], got
    counts = duckdb.rows(f"SELECT dt, hour, count(*) n FROM read_parquet('{local}/logs/*/*/*.parquet', "
                         f"hive_partitioning = true) WHERE code = 500 GROUP BY ALL ORDER BY hour")
    assert [(c_["dt"], int(c_["hour"]), c_["n"]) for c_ in counts] == \
        [("2024-01-01", 0, "10"), ("2024-01-01", 1, "10")], counts


def test_odd_shapes_read_by_duckdb():
    """The fuzz target's inputs (its corpus and seeded random bytes) made into files by the
    same code (tests/fuzz/parquet_shapes.h): DuckDB decodes every column of every file and
    counts the rows the writer accepted."""
    import random, subprocess
    import lstest
    tool = os.path.join(os.environ.get("TOOLS", os.path.join(lstest.ROOT, "build", "tools")),
                        "parquet_shapes")
    d = tmpdir()
    inputs = sorted(glob.glob(os.path.join(lstest.ROOT, "tests", "fuzz", "corpus", "parquet", "*")))
    rnd = random.Random(16)
    for i in range(40):
        p = os.path.join(d, f"rand{i}")
        with open(p, "wb") as f:
            f.write(bytes(rnd.randrange(256) for _ in range(rnd.choice([3, 40, 400, 4000]))))
        inputs.append(p)
    sqls, want = [], []
    for i, p in enumerate(inputs):
        out = os.path.join(d, f"f{i}.parquet")
        r = subprocess.run([tool, p, out], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (p, r.stderr)
        lstest.check_sanitizer(r.stderr, "parquet_shapes")
        want.append(r.stdout.strip())
        sqls.append(f"SELECT count(*) AS n, max(length(CAST(COLUMNS(*) AS VARCHAR))) "
                    f"FROM read_parquet('{out}')")
    got = duckdb.query(*sqls)
    assert [g[0]["n"] for g in got] == want, (got, want)


def test_repeated_strings_are_kept_once_per_row_group():
    """Byte arrays are interned as rows are added: a row group of row_group_size holds many
    more rows when values repeat (a pool of 20 strings), and a column that turns out
    mostly distinct after sharing some values (a run of one value, then unique ones) is
    written PLAIN. DuckDB reads every value back, nulls included."""
    pool = ["agent-%02d " % i + "x" * 60 for i in range(20)]
    recs = []
    for i in range(6000):
        uniq = "same" if i < 500 else "u%06d" % i
        recs.append({"t": T0 + i // 100, "seq": i, "agent": pool[(i * 7) % 20] if i % 9 else None,
                     "path": uniq})
    d = tmpdir()
    c = conf(sample(recs) + file_match(d, "    schema seq:integer,agent:string,path:string\n"
                                          "    compression zstd\n    row_group_size 192k\n"), d)
    oneshot(c)
    fs = files(d)
    assert len(fs) == 1, fs
    got, meta = duckdb.query(
        f"SELECT seq, agent, path FROM read_parquet('{fs[0]}') ORDER BY seq",
        f"SELECT row_group_id, row_group_num_rows AS n, path_in_schema AS col, encodings "
        f"FROM parquet_metadata('{fs[0]}')")
    assert [(int(g["seq"]), g["agent"], g["path"]) for g in got] == \
        [(r["seq"], r["agent"], r["path"]) for r in recs]
    rows = {m["row_group_id"]: int(m["n"]) for m in meta}
    # stored whole, a row is about 100 bytes: 192 KiB would hold about 2000 of them
    assert max(rows.values()) > 4000, rows
    first = [m for m in meta if str(m["row_group_id"]) == "0"]
    encs = {m["col"]: m["encodings"] for m in first}
    assert "RLE_DICTIONARY" in encs["agent"], encs
    assert "RLE_DICTIONARY" not in encs["path"], encs
