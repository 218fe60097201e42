"""fluent-plugin-mysql's outputs (mysql_bulk, and the deprecated mysql) against Debian's
MariaDB started by the test: rows read back with the mariadb client and compared with what
the plugin's pseudo_bind would have written (varchar cut, JSON and epoch columns, ${time},
ON DUPLICATE KEY UPDATE, NULL/TRUE quoting, escapes), and the old plugin's chunk written in
one transaction (a failure half-way leaves nothing, so the retry writes each row once)."""
import json, os, time

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
import mariadb

ENV = dict(os.environ, TZ="UTC")


def db():
    m = mariadb.shared("mysql-out")
    m.root_sql("CREATE DATABASE IF NOT EXISTS logs; "
               "CREATE USER IF NOT EXISTS 'writer'@'%' IDENTIFIED BY 'w-pw'; "
               "GRANT ALL ON logs.* TO 'writer'@'%';")
    return m


def sample(tag, recs):
    return f"""
<source>
  @type sample
  tag {tag}
  sample {json.dumps(recs)}
  count {len(recs)}
  rate 1000
</source>
"""


def conn(m):
    return f"""  host 127.0.0.1
  port {m.port}
  database logs
  username writer
  password w-pw"""


def test_mysql_bulk_columns_cut_json_time_and_duplicate_update():
    m = db()
    m.root_sql("DROP TABLE IF EXISTS logs.app_web; CREATE TABLE logs.app_web ("
               "id INT PRIMARY KEY, name VARCHAR(5), meta TEXT, at DATETIME, seen DATETIME, "
               "flag VARCHAR(10), hits INT)")
    recs = [{"id": 1, "user": "abcdefgh", "m": {"k": [1, 2]}, "ts": 1704164645, "f": True,
             "hits": 1},
            {"id": 2, "user": "it's \"q\"\\", "m": None, "ts": 1704164646, "f": None,
             "hits": 5},
            {"id": 1, "user": "zz", "m": "s", "ts": 1704164647, "f": False, "hits": 9}]
    c = conf(sample("app.web", recs) + f"""
<match app.**>
  @type mysql_bulk
{conn(m)}
  table ${{tag}}
  column_names id,name,meta,at,seen,flag,hits
  key_names id,user,m,ts,${{time}},f,hits
  json_key_names m
  unixtimestamp_key_names ts
  on_duplicate_key_update true
  on_duplicate_update_keys hits,name
  <buffer tag>
    flush_mode lazy
  </buffer>
</match>
""")
    p = run(["-c", c, "--oneshot"], env=ENV, timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = m.root_sql("SELECT id, name, meta, at, flag, hits FROM logs.app_web ORDER BY id")
    # the table is ${tag} with '.' as '_'; a varchar(N) column takes to_s cut to N characters
    # (true is 'true'), a JSON column Oj.dump's text (nil is 'null'), nil elsewhere NULL; the
    # second row with id 1 updated hits and name only (ON DUPLICATE KEY UPDATE)
    assert rows == [["1", "zz", '{"k":[1,2]}', "2024-01-02 03:04:05", "true", "9"],
                    ["2", "it's ", "null", "2024-01-02 03:04:06", "NULL", "5"]], rows
    seen = m.root_sql("SELECT seen FROM logs.app_web WHERE id = 2")[0][0]
    assert seen.startswith(time.strftime("%Y-%m-%d", time.gmtime())), seen


def test_old_mysql_sql_placeholders_and_a_chunk_in_one_transaction():
    m = db()
    m.root_sql("DROP TABLE IF EXISTS logs.tracking; CREATE TABLE logs.tracking ("
               "host VARCHAR(20), n INT, stamp VARCHAR(20), CONSTRAINT small CHECK (n < 3))")
    d = tmpdir()
    recs = [{"HOST": "a", "N": 1}, {"HOST": "b", "N": 2}, {"HOST": "c", "N": 3}]
    # the v0.12 shape of a public configuration: sql with ?s and key_names
    c = conf(sample("user.track", recs) + f"""
<match user.**>
  type mysql
{conn(m)}
  key_names HOST,N
  sql INSERT INTO tracking (host,n,stamp) VALUES (?,?,'') ON DUPLICATE KEY UPDATE stamp = 'x';
  <buffer>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3s
    retry_wait 0.3
    retry_max_interval 0.5
  </buffer>
</match>
""", d)
    a = Agent(c, env=ENV).start()
    try:
        a.wait_log("CONSTRAINT `small` failed")
        time.sleep(0.5)
        # the failed chunk left no row (fluent-plugin-mysql would have kept a and b, and
        # written them again on the retry)
        assert m.root_sql("SELECT COUNT(*) FROM logs.tracking") == [["0"]]
        m.root_sql("ALTER TABLE logs.tracking DROP CONSTRAINT small")
        wait_until(lambda: m.root_sql("SELECT COUNT(*) FROM logs.tracking") == [["3"]],
                   timeout=30, what="three rows")
    finally:
        a.stop()
    rows = m.root_sql("SELECT host, n FROM logs.tracking ORDER BY n")
    assert rows == [["a", "1"], ["b", "2"], ["c", "3"]], rows
    assert "This plugin deprecated. You should use mysql_bulk." in a.log()


def test_configuration_errors_name_the_line():
    for body, want in [
        ("  @type mysql_bulk\n  database d\n  username u\n  table t\n", "'column_names'"),
        ("  @type mysql\n  host h\n  database d\n  username u\n  key_names a,b\n"
         "  sql INSERT INTO t VALUES (?)\n", "mismatch between sql placeholders and key_names"),
        ("  @type mysql\n  host h\n  database d\n  username u\n  key_names a\n",
         "columns or sql MUST be specified"),
    ]:
        c = conf(f"<match a>\n{body}</match>\n")
        p = run(["-c", c, "--dry-run"])
        assert p.returncode != 0 and want in p.stderr and ".conf:" in p.stderr, (body, p.stderr)
