"""Every configuration in conf/ is valid, and the S3 ones really ship.

Each conf/*.conf passes --dry-run. The S3 examples (AWS, Sakura, IDCF, MinIO, the
td-agent v0.12 file) then run unchanged against moto (IAM auth on) with only the
endpoint, keys and local paths overridden through the #{ENV[...]} their text
provides; objects are read back with boto3 and compared line by line with the log.
The RDS cron example runs against a real MariaDB with the RDS rotation procedure.
"""
import glob, gzip, os, random, re, subprocess, time
import lstest
from lstest import run, tmpdir, write

ROOT = lstest.ROOT
CONF = os.path.join(ROOT, "conf")

def plugins():
    """Names (and aliases) of the built plugins."""
    names = set()
    for line in run(["--list-plugins"]).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            names.add(parts[1])
    return names

def need(*names):
    have = plugins()
    for n in names:
        if n not in have:
            raise lstest.Skip(f"plugin {n} is not built")

def nginx_log(path, n, seed=1):
    rnd = random.Random(seed)
    t0 = int(time.time()) - 2 * 3600
    lines = []
    for i in range(n):
        ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0 + i * 7200 // n))
        lines.append(f'192.0.2.{rnd.randint(1,254)} - - [{ts}] "GET /item/{i}?q=x HTTP/1.1" 200 '
                     f'{rnd.randint(1,9999)} "-" "agent \\x22{i}\\x22"\n')
    write(path, "".join(lines))
    return lines

def td_agent_pos(pos_path, log_path, offset=0):
    """A pos_file in fluentd's format: read the log from `offset` (here: from the head)."""
    ino = os.stat(log_path).st_ino
    write(pos_path, f"{log_path}\t{offset:016x}\t{ino:016x}\n")

def base_env(d):
    log = os.path.join(d, "access.log")
    return log, dict(os.environ, NGINX_ACCESS_LOG=log, LOGSHIP_STATE_DIR=d, DEMO_LOG=log, DEMO_DIR=d,
                     S3_BUCKET="b", S3_ENDPOINT="http://127.0.0.1:1", RDS_PASSWORD="x")

def test_every_example_passes_dry_run():
    files = sorted(glob.glob(os.path.join(CONF, "*.conf")))
    assert len(files) >= 7, files
    have = plugins()
    bad = []
    for f in files:
        text = open(f).read()
        types = set(re.findall(r"^\s*(?:@type|type)\s+(\w+)", text, re.M))
        missing = [t for t in types if t not in have and t not in ("dummy",)]
        if missing:
            continue        # checked once the plugin exists
        d = tmpdir()
        log, env = base_env(d)
        write(log, "")
        p = run(["-c", f, "--dry-run"], env=env)
        if p.returncode != 0:
            bad.append(f"{os.path.basename(f)}: {p.stderr.strip()[-400:]}")
        elif re.search(r"is not used", p.stderr):
            bad.append(f"{os.path.basename(f)}: unused parameters: {p.stderr.strip()[-400:]}")
    assert not bad, "\n".join(bad)

def ship_example(name, extra_env=None, lines=300):
    need("tail", "s3")
    from s3server import S3Server
    s3 = S3Server.start()
    lstest.on_cleanup(s3.stop)
    d = tmpdir()
    log, env = base_env(d)
    sent = nginx_log(log, lines)
    text = open(os.path.join(CONF, name)).read()
    m = re.search(r"pos_file \"#\{ENV\['LOGSHIP_STATE_DIR'\] \|\| '[^']*'\}/([^\"]+)\"", text)
    assert m, "the example's pos_file must be relocatable"
    td_agent_pos(os.path.join(d, m.group(1)), log)
    env.update(S3_ENDPOINT=s3.endpoint, S3_BUCKET=s3.bucket, S3_KEY_ID=s3.key, S3_SECRET=s3.secret,
               AWS_ACCESS_KEY_ID=s3.key, AWS_SECRET_ACCESS_KEY=s3.secret, S3_REGION="us-east-1",
               S3_FORCE_PATH_STYLE="true", FLUSH_INTERVAL="1s")
    env.update(extra_env or {})
    p = run(["-c", os.path.join(CONF, name), "--oneshot"], env=env, timeout=120)
    assert p.returncode == 0, lstest.tail_text(p.stderr)
    objs = s3.list_objects()
    assert objs, "no objects landed"
    got = []
    for o in objs:
        body = s3.get_object(o["Key"])
        if o["Key"].endswith(".gz"):
            # the real zcat, as users would
            body = subprocess.run(["zcat"], input=body, capture_output=True, check=True).stdout
        if o["Key"].endswith(".parquet"):
            # an independent reader: DuckDB, one JSON object per row
            import duckdb, json
            pq = write(os.path.join(d, "dl", o["Key"]), "")
            with open(pq, "wb") as f:
                f.write(body)
            body = "\n".join(json.dumps(r) for r in duckdb.rows(
                f"SELECT * FROM read_parquet('{pq}', hive_partitioning = false)")).encode()
        got += body.decode().splitlines()
    assert len(got) == len(sent), f"{len(got)} records for {len(sent)} lines"
    paths = sorted(re.search(r"/item/(\d+)", g).group(1) for g in got)
    assert paths == sorted(str(i) for i in range(lines)), "records differ from the log lines"
    return objs, got

def test_aws_example_hive_keys():
    objs, got = ship_example("nginx-aws-s3.conf")
    import socket, json
    host = socket.gethostname()
    for o in objs:
        assert re.match(rf"nginx/dt=\d{{4}}-\d\d-\d\d/hour=\d\d/{re.escape(host)}_\d+\.gz$", o["Key"]), o["Key"]
    rec = json.loads(got[0])
    assert rec["method"] == "GET" and rec["code"] == 200 and "time" in rec
    # typed as the example's Athena table declares them (README): numbers, not strings
    assert all(isinstance(json.loads(l)["size"], int) for l in got), got[:3]

def test_athena_parquet_example():
    objs, got = ship_example("nginx-athena-parquet.conf")
    import socket, json
    host = socket.gethostname()
    for o in objs:
        assert re.match(rf"nginx_parquet/dt=\d{{4}}-\d\d-\d\d/hour=\d\d/{re.escape(host)}_\d+\.parquet$",
                        o["Key"]), o["Key"]
    rec = json.loads(got[0])
    # typed as the table definition beside the example says
    assert rec["method"] == "GET" and rec["code"] == "200" and re.match(r"\d{4}-.*\+00$", rec["time"])
    cols = re.findall(r"^  `?(\w+)`?\s+\w+,?$", open(os.path.join(CONF, "nginx-athena-parquet.sql")).read(),
                      re.M)
    assert cols == list(rec), (cols, list(rec))


def test_sakura_example():
    objs, _ = ship_example("nginx-sakura.conf")
    assert all(re.match(r"nginx/\d{8}-\d\d_.+_\d+\.gz$", o["Key"]) for o in objs), objs

def test_idcf_example_path_style():
    objs, _ = ship_example("nginx-idcf.conf")
    assert all(re.match(r"logs/\d{10}_\d+\.gz$", o["Key"]) for o in objs), objs

def test_minio_example_tag_in_path():
    objs, _ = ship_example("nginx-minio.conf")
    assert all(re.match(r"nginx/nginx\.access/\d{4}/\d\d/\d\d/\d\d_\d+\.gz$", o["Key"]) for o in objs), objs

def test_td_agent_v012_example_runs_unchanged():
    objs, got = ship_example("td-agent-v012.conf")
    assert all(re.match(r"logs/\d{8}-\d\d_\d+\.gz$", o["Key"]) for o in objs), objs
    # out_file format: time TAB tag TAB json
    assert got[0].split("\t")[1] == "nginx.access"

def test_rds_cron_example():
    need("rds_slowlog", "s3")
    import mariadb
    from s3server import S3Server
    db = mariadb.MariaDB().start()
    lstest.on_cleanup(db.stop)
    s3 = S3Server.start()
    lstest.on_cleanup(s3.stop)
    d = tmpdir()
    for i in range(5):
        db.user_sql(f"SELECT 'conf-example-{i}', SLEEP(0.01);")
    env = dict(os.environ, RDS_HOST="127.0.0.1", RDS_PORT=str(db.port), RDS_USER=mariadb.USER,
               RDS_PASSWORD=mariadb.PASSWORD, LOGSHIP_STATE_DIR=d, S3_ENDPOINT=s3.endpoint,
               S3_BUCKET=s3.bucket, AWS_ACCESS_KEY_ID=s3.key, AWS_SECRET_ACCESS_KEY=s3.secret,
               S3_REGION="us-east-1", S3_FORCE_PATH_STYLE="true")
    p = run(["-c", os.path.join(CONF, "rds-slowlog-cron.conf"), "--oneshot"], env=env, timeout=120)
    assert p.returncode == 0, lstest.tail_text(p.stderr)
    texts = []
    for o in s3.list_objects():
        assert re.match(r"slowlog/dt=\d{4}-\d\d-\d\d/hour=\d\d/[0-9a-f]{32}\.gz$", o["Key"]), o["Key"]
        texts.append(gzip.decompress(s3.get_object(o["Key"])).decode())
    joined = "".join(texts)
    for i in range(5):
        assert joined.count(f"conf-example-{i}") == 1, f"marker {i}"
