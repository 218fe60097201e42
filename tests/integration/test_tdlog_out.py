"""@type tdlog (fluent-plugin-td, the output of every stock td-agent.conf) against a stand-in
for Treasure Data's import and table APIs on 127.0.0.1, as td-client-ruby calls them: PUT
/v3/table/import_with_id/<db>/<table>/<unique id>/msgpack.gz with "Authorization: TD1
<apikey>", a gzip of MessagePack maps (read back with python3-msgpack), 404 for a missing
table, POST /v3/table/create/<db>/<table>/log and /v3/database/create/<db>."""
import glob, gzip, http.server, json, os, subprocess, threading

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

ENV = dict(os.environ, TZ="UTC")
KEY = "1/0123456789abcdef"
SYS_PY = "/usr/bin/python3"     # Debian's, with python3-msgpack (the runner's has none)


def unpack(gz):
    """The import body's records, read by python3-msgpack (an independent decoder)."""
    p = subprocess.run([SYS_PY, "-c", "import json, msgpack, sys; print(json.dumps(list("
                        "msgpack.Unpacker(sys.stdin.buffer, raw=False))))"],
                       input=gzip.decompress(gz), capture_output=True, check=True)
    return json.loads(p.stdout)


def need_msgpack():
    if subprocess.run([SYS_PY, "-c", "import msgpack"], capture_output=True).returncode != 0:
        raise lstest.Skip("/usr/bin/python3 has no msgpack (python3-msgpack)")


class TD:
    def __init__(self, dbs=(), tables=(), codes=()):
        self.dbs, self.tables = set(dbs), set(tables)
        self.codes = list(codes)        # forced answers to the next imports
        self.imports = []               # (db, table, unique id, records)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def reply(self, code, obj):
                b = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                p = self.path.split("/")
                with outer.lock:
                    outer.requests.append((self.command, self.path, dict(self.headers)))
                    if self.headers.get("Authorization") != f"TD1 {KEY}":
                        return self.reply(401, {"message": "Authentication failed"})
                    if self.command == "PUT" and p[1:4] == ["v3", "table", "import_with_id"]:
                        db, table, uid = p[4], p[5], p[6]
                        if outer.codes:
                            return self.reply(outer.codes.pop(0), {"message": "forced"})
                        if (db, table) not in outer.tables:
                            return self.reply(404, {"message": "Table not found"})
                        if not any(i[2] == uid for i in outer.imports):
                            outer.imports.append((db, table, uid, body))
                        return self.reply(200, {"elapsed_time": 0.1})
                    if self.command == "POST" and p[1:4] == ["v3", "database", "create"]:
                        if p[4] in outer.dbs:
                            return self.reply(409, {"message": "Database already exists"})
                        outer.dbs.add(p[4])
                        return self.reply(200, {"database": p[4]})
                    if self.command == "POST" and p[1:4] == ["v3", "table", "create"]:
                        if p[4] not in outer.dbs:
                            return self.reply(404, {"message": "Database not found"})
                        outer.tables.add((p[4], p[5]))
                        return self.reply(200, {"table": p[5], "type": p[6]})
                    return self.reply(404, {"message": "no such API"})

            do_PUT = do_POST = handle_any

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)


def td_conf(d, td, tag="td.My-DB.access", out="", apikey=KEY):
    return conf(f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/pos
  read_from_head true
  tag {tag}
  <parse>
    @type json
    time_key t
    time_type float
  </parse>
</source>
<match td.*.*>
  @type tdlog
  @id output_td
  apikey {apikey}
  auto_create_table
  endpoint {td.url}
  api_endpoint {td.url}
  {out}
  <buffer>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
  </buffer>
  <secondary>
    @type file
    path {d}/failed_records
  </secondary>
</match>
""", d)


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def test_import_creates_database_and_table_and_sets_time():
    need_msgpack()
    td = TD()
    d = tmpdir()
    log(d, [{"t": 1704164645.7, "n": i, "time": "overwritten", "u": "caf\u00e9"} for i in range(3)])
    p = run(["-c", td_conf(d, td), "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(td.imports) == 1, td.requests
    db, table, uid, body = td.imports[0]
    recs = unpack(body)
    # td-client's normalize: lowercase, other characters '_'
    assert (db, table) == ("my_db", "access") and len(uid) == 32, td.imports
    assert recs == [{"n": i, "u": "caf\u00e9", "time": 1704164645} for i in range(3)], recs
    calls = [(m, path.split("/")[1:5]) for m, path, _ in td.requests]
    assert calls == [("PUT", ["v3", "table", "import_with_id", "my_db"]),
                     ("POST", ["v3", "table", "create", "my_db"]),
                     ("POST", ["v3", "database", "create", "my_db"]),
                     ("POST", ["v3", "table", "create", "my_db"]),
                     ("PUT", ["v3", "table", "import_with_id", "my_db"])], calls


def test_503_retried_with_the_same_unique_id_and_401_unrecoverable():
    need_msgpack()
    td = TD(dbs=["db1"], tables=[("db1", "tb1")], codes=[503, 429])
    d = tmpdir()
    log(d, [{"t": 1704164645, "n": 1}])
    p = run(["-c", td_conf(d, td, tag="td.db1.tb1"), "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    puts = [path for m, path, _ in td.requests if m == "PUT"]
    assert len(puts) == 3 and len(set(puts)) == 1, puts
    assert [unpack(i[3]) for i in td.imports] == [[{"n": 1, "time": 1704164645}]]
    # a bad apikey: unrecoverable, the chunk goes to <secondary> at once
    td2 = TD(dbs=["db1"], tables=[("db1", "tb1")])
    d2 = tmpdir()
    log(d2, [{"t": 1704164645, "n": 2}])
    a = Agent(td_conf(d2, td2, tag="td.db1.tb1", apikey="wrong"), env=ENV).start()
    try:
        wait_until(lambda: glob.glob(f"{d2}/failed_records*"), what="the secondary's file")
    finally:
        a.stop()
    assert "Authentication failed" in a.log(), a.log()[-2000:]
    assert len([r for r in td2.requests if r[0] == "PUT"]) == 1


def test_fixed_database_and_table_and_bad_names():
    td = TD(dbs=["fixed_db"], tables=[("fixed_db", "events")])
    d = tmpdir()
    log(d, [{"t": 1704164645, "n": 1}])
    p = run(["-c", td_conf(d, td, tag="td.x.y", out="database fixed_db\n  table events"),
             "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert [(i[0], i[1]) for i in td.imports] == [("fixed_db", "events")]
    c = conf("<match td.*.*>\n  @type tdlog\n  apikey k\n  database Bad-Name\n  table t1_\n"
             "</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and 'Invalid database name "Bad-Name"' in p.stderr, p.stderr
    assert ".conf:4:" in p.stderr, p.stderr
