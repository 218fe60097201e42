"""@type mongo and mongo_replset (fluent-plugin-mongo) with libmongoc, against a MongoDB
wire-protocol stand-in (tests/lib/mongoserver.py, run by Debian's python3 with python3-bson:
an independent BSON decoder) on 127.0.0.1: documents and their BSON types, the time and
date_keys as dates, ObjectIds, key replacement, capped collections and the TTL index, SCRAM
authentication, a failed insert retried, a lost answer resent without a second copy, and a
refused document logged while the others go in."""
import json, os, subprocess

import lstest
from lstest import Agent, conf, run, tmpdir, write

PY = "/usr/bin/python3"
SERVER = os.path.join(lstest.ROOT, "tests", "lib", "mongoserver.py")
ENV = dict(os.environ, TZ="UTC")
T0 = 1704164645.25     # 2024-01-02T03:04:05.25Z


def _need():
    p = subprocess.run([PY, "-c", "import bson"], capture_output=True)
    if p.returncode != 0:
        raise lstest.Skip("Debian's python3-bson is not installed (install-deps.sh test)")


class Mongo:
    def __init__(self, *extra):
        _need()
        self.port = lstest.free_port()
        self.out = os.path.join(lstest.tmpdir("ls-mongo-"), "ops.jsonl")
        open(self.out, "w").close()
        self.p = subprocess.Popen([PY, SERVER, "--port", str(self.port), "--out", self.out]
                                  + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        lstest.on_cleanup(self.stop)
        assert self.p.stdout.readline().strip() == "ready", self.p.stderr.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(5)

    def ops(self, op=None):
        with open(self.out) as f:
            all_ops = [json.loads(line) for line in f if line.strip()]
        return [o for o in all_ops if op is None or o["op"] == op]

    def docs(self):
        return [o["doc"] for o in self.ops("insert")]


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def mconf(d, srv, out, tag="app.web", plugin="mongo", buffer_extra=""):
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
<match app.**>
  @type {plugin}
  host 127.0.0.1
  port {srv.port}
{out}
  <buffer>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
    {buffer_extra}
  </buffer>
</match>
""", d)


def date_ms(v):
    return int(v["$date"]["$numberLong"])


def test_documents_types_time_and_ids():
    srv = Mongo()
    d = tmpdir()
    log(d, [{"t": T0, "msg": "hello", "n": 5, "big": 2 ** 40, "f": 1.5, "ok": True, "none": None,
             "obj": {"a": [1, "x", {"b": False}]}},
            {"t": T0 + 1, "msg": "second", "_id": "mine"}])
    p = run(["-c", mconf(d, srv, "  database logs\n  collection access"), "--oneshot"],
            env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    ins = srv.ops("insert")
    assert {(o["db"], o["collection"]) for o in ins} == {("logs", "access")}
    a, b = srv.docs()
    assert list(a) == ["_id", "msg", "n", "big", "f", "ok", "none", "obj", "time"], a
    assert a["n"] == {"$numberInt": "5"} and a["big"] == {"$numberLong": str(2 ** 40)}, a
    assert a["f"] == {"$numberDouble": "1.5"} and a["ok"] is True and a["none"] is None, a
    assert a["obj"] == {"a": [{"$numberInt": "1"}, "x", {"b": False}]}, a
    # the event time as a BSON date (milliseconds), as the plugin's Time.at(time)
    assert date_ms(a["time"]) == 1704164645250, a["time"]
    # _id made by logship: an ObjectId whose first 4 bytes are the event time
    assert int(a["_id"]["$oid"][:8], 16) == int(T0), a["_id"]
    assert b["_id"] == "mine" and b["msg"] == "second", b


def test_names_capped_ttl_dates_object_ids_and_keys():
    srv = Mongo()
    d = tmpdir()
    log(d, [{"t": T0, "at": 1704164645, "ms": 1704164645123, "s": "2024-01-02 03:04:05 +0000",
             "bad": "not a date", "ref": "5f1d7a2b9c8e4d3f2a1b0c9d", "a.b": 1, "$x": 2,
             "nest": {"c.d": 3}}])
    out = """  database db_${tag[0]}
  tag_mapped
  remove_tag_prefix app.
  capped
  capped_size 10m
  capped_max 1000
  expire_after 3600
  date_keys at,ms,s,bad
  object_id_keys ref
  replace_dot_in_key_with _
  replace_dollar_in_key_with __"""
    p = run(["-c", mconf(d, srv, out), "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    (cr,) = srv.ops("create")
    assert (cr["db"], cr["collection"]) == ("db_app", "web"), cr
    assert cr["options"] == {"capped": True, "size": 10485760, "max": 1000}, cr
    (ix,) = srv.ops("createIndexes")
    assert ix["indexes"][0]["key"] == {"time": 1}, ix
    assert ix["indexes"][0]["expireAfterSeconds"] == 3600, ix
    (doc,) = srv.docs()
    assert date_ms(doc["at"]) == 1704164645000 and date_ms(doc["ms"]) == 1704164645123, doc
    assert date_ms(doc["s"]) == 1704164645000 and doc["bad"] is None, doc
    assert doc["ref"] == {"$oid": "5f1d7a2b9c8e4d3f2a1b0c9d"}, doc
    assert doc["a_b"] == {"$numberInt": "1"} and doc["__x"] == {"$numberInt": "2"}, doc
    assert doc["nest"] == {"c_d": {"$numberInt": "3"}}, doc
    assert "Failed to parse 'bad' field" in p.stderr, p.stderr[-2000:]


def test_scram_authentication_and_a_wrong_password_keeps_the_data():
    srv = Mongo("--user", "ruckus", "--password", "s3cret")
    d = tmpdir()
    log(d, [{"t": T0, "msg": "x"}])
    bad = mconf(d, srv, "  database r\n  collection log\n  user ruckus\n  password wrong")
    a = Agent(bad, env=ENV)
    a.start()
    a.wait_log("uthentication failed", timeout=30)
    assert a.stop() == 0, a.log()
    assert srv.docs() == []
    good = mconf(d, srv, "  database r\n  collection log\n  user ruckus\n  password s3cret")
    p = run(["-c", good, "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert [x["msg"] for x in srv.docs()] == ["x"]


def test_failed_insert_retried_and_a_lost_answer_is_not_a_second_copy():
    srv = Mongo("--fail-inserts", "1", "--lose-answers", "1")
    d = tmpdir()
    log(d, [{"t": T0 + i, "n": i} for i in range(20)])
    p = run(["-c", mconf(d, srv, "  database r\n  collection c"), "--oneshot"], env=ENV,
            timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    # the first insert failed (code 91), the second went in and its answer was lost, the
    # third met the same _ids as duplicates: every record once
    assert sorted(int(x["n"]["$numberInt"]) for x in srv.docs()) == list(range(20))
    assert "quiesce" in p.stderr, p.stderr[-3000:]


def test_a_refused_document_is_logged_and_the_others_go_in():
    srv = Mongo("--reject-field", "poison")
    d = tmpdir()
    log(d, [{"t": T0, "n": 0}, {"t": T0, "n": 1, "poison": 1}, {"t": T0, "n": 2}])
    p = run(["-c", mconf(d, srv, "  database r\n  collection c\n  ordered true"), "--oneshot"],
            env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert [int(x["n"]["$numberInt"]) for x in srv.docs()] == [0, 2]
    assert "Document failed validation" in p.stderr, p.stderr[-3000:]


def test_configuration_and_public_shapes():
    d = tmpdir()
    c = conf("<match a>\n  @type mongo\n  collection c\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "connection_string or database parameter is required" \
        in p.stderr and ".conf:1:" in p.stderr, p.stderr
    c = conf("<match a>\n  @type mongo\n  database d\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "normal mode requires collection parameter" in p.stderr, p.stderr
    c = conf("<match a>\n  @type mongo\n  database d\n  collection c\n  capped\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "'capped_size' parameter is required" in p.stderr, p.stderr
    c = conf("""<match ruckus.**>
  @type mongo
  database ruckus
  collection log
  capped
  capped_size 100m
  host 127.0.0.1
  port 27017
  user ruckus
  password lab4man1
  time_key time
</match>
<match rails.access>
  type mongo
  database rails
  collection accesslog
  host localhost
  port 27017
  flush_interval 10s
  include_time_key true
</match>
<match docker.**>
  type mongo_replset
  database fluentd
  collection logs
  nodes localhost:27017,localhost:27018
  replica_set rs0
</match>
""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode == 0, p.stderr

