"""rds_slowlog against the mysql.slow_log column sets of MySQL 5.6, 5.7, 8.0 and older MariaDB.

Debian has no MySQL server, so each test gives a fresh MariaDB's log tables
the exact column set and types of one server version (reference
rds_s3compat.md 2.1) and fills them with known rows. MariaDB refuses INSERT
into the log table itself, even with logging off, but accepts it into a copy
made LIKE it; so the rows are put in mysql.slow_log2 and moved into place
with the RDS rotate procedure: row set A ends up in slow_log_backup (read
by the salvage step) and row set B in slow_log (read after logship's own
rotation). Each row must arrive exactly once with the types the plugin
derives from the result metadata: durations as float seconds with
microseconds, counters as integers, sql_text as text (also from a
MEDIUMBLOB holding bytes that are not UTF-8, which must still be valid
JSON), thread_id only where the column exists, and the event time taken
from start_time with its microseconds.
"""
import calendar, json, os, random, re

import lstest
import mariadb

RUN = "%06x" % random.randrange(1 << 24)

COMMON_HEAD = """
  `user_host` MEDIUMTEXT NOT NULL,
  `query_time` {time} NOT NULL,
  `lock_time` {time} NOT NULL,
  `rows_sent` INT NOT NULL,
  `rows_examined` INT NOT NULL,
  `db` VARCHAR(512) NOT NULL,
  `last_insert_id` INT NOT NULL,
  `insert_id` INT NOT NULL,
  `server_id` INT UNSIGNED NOT NULL,
  `sql_text` {sql_text} NOT NULL"""

TS0 = "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
TS6 = ("TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
       "ON UPDATE CURRENT_TIMESTAMP(6)")

# name: (start_time type, TIME type, sql_text type, extra columns, charset, fractional?)
VERSIONS = {
    "mysql56": (TS0, "TIME", "MEDIUMTEXT", "", "utf8mb3", False),
    "mysql57": (TS6, "TIME(6)", "MEDIUMBLOB", ",\n  `thread_id` BIGINT(21) UNSIGNED NOT NULL",
                "utf8mb3", True),
    "mysql80": (TS6, "TIME(6)", "MEDIUMBLOB", ",\n  `thread_id` BIGINT UNSIGNED NOT NULL",
                "utf8mb3", True),
    # MariaDB 10.1-10.4 (INT counters; 10.5+ widened them to BIGINT UNSIGNED, tested elsewhere)
    "mariadb103": (TS6, "TIME(6)", "MEDIUMTEXT",
                   ",\n  `thread_id` BIGINT(21) UNSIGNED NOT NULL,\n  `rows_affected` INT NOT NULL",
                   "utf8mb3", True),
}


def ddl(name):
    ts, tm, st, extra, cs, _ = VERSIONS[name]
    return (f"CREATE TABLE mysql.slow_log (\n  `start_time` {ts},"
            + COMMON_HEAD.format(time=tm, sql_text=st) + extra
            + f"\n) ENGINE=CSV CHARACTER SET {cs} COMMENT='Slow log'")


def has(name, col):
    return f"`{col}`" in ddl(name)


def sql_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def make_rows(name, group, first, n):
    """Known rows; every field differs between rows so a mix-up shows."""
    frac = VERSIONS[name][5]
    rows = []
    for i in range(first, first + n):
        marker = f"{name}-{RUN}-{group}-{i}"
        us = (i * 123457) % 1000000 if frac else 0
        r = {
            "marker": marker,
            "start_time": f"2024-01-{2 + i % 27:02d} 03:04:{i % 60:02d}" + (f".{us:06d}" if frac else ""),
            "epoch": calendar.timegm((2024, 1, 2 + i % 27, 3, 4, i % 60, 0, 0, 0)) + us / 1e6,
            "user_host": f"app{i}[app{i}] @ web{i}.example [10.0.0.{i}]",
            # hours beyond 24 too: TIME reaches 838:59:59
            "query_time": (f"{i * 7:02d}:00:{i % 60:02d}" + (f".{(i * 31) % 1000000:06d}" if frac else "")),
            "qt": i * 7 * 3600 + i % 60 + ((i * 31) % 1000000 / 1e6 if frac else 0),
            "lock_time": "00:00:00" + (f".{i * 11:06d}" if frac else ""),
            "lt": (i * 11 / 1e6) if frac else 0.0,
            "rows_sent": i * 3,
            "rows_examined": 2147483647 - i,
            "db": "" if i % 2 else f"db{i}",
            "last_insert_id": i * 5,
            "insert_id": -i,
            "server_id": 4294967295 - i,
            "thread_id": 9223372036854775807 - i,
            "rows_affected": i * 2,
        }
        binary = VERSIONS[name][2] == "MEDIUMBLOB"
        text = f"SELECT /* {marker} */ '\u65e5\u672c\u8a9e', {i}"
        if binary and i % 2 == 0:
            # MySQL 5.7+ keeps the statement's bytes as they came: not necessarily UTF-8
            raw = text.encode() + b" -- \xff\xfe\x80 latin1 \xe9"
        else:
            raw = text.encode()
        r["sql_raw"] = raw
        rows.append(r)
    return rows


def insert_sql(name, table, rows):
    cols = ["start_time", "user_host", "query_time", "lock_time", "rows_sent", "rows_examined",
            "db", "last_insert_id", "insert_id", "server_id", "sql_text"]
    for extra in ("thread_id", "rows_affected"):
        if has(name, extra):
            cols.append(extra)
    vals = []
    for r in rows:
        v = []
        for c in cols:
            if c == "sql_text":
                v.append("X'" + r["sql_raw"].hex() + "'")
            elif isinstance(r[c], int):
                v.append(str(r[c]))
            else:
                v.append(sql_str(r[c]))
        vals.append("(" + ", ".join(v) + ")")
    return (f"INSERT INTO mysql.{table} (" + ", ".join(cols) + ") VALUES\n"
            + ",\n".join(vals) + ";\n")


def setup_server(name):
    # the server's zone is UTC so the literal start_time values are UTC instants
    server = mariadb.MariaDB(["--default-time-zone=+00:00"]).start()
    lstest.on_cleanup(server.stop)
    server.root_sql("SET GLOBAL slow_query_log=0;\n"
                    "DROP TABLE IF EXISTS mysql.slow_log_backup, mysql.slow_log2;\n"
                    "DROP TABLE mysql.slow_log;\n" + ddl(name) + ";\n")
    return server


def stage(server, name, table_rows):
    """Rows go into slow_log2, and a rotation moves that in as slow_log."""
    server.root_sql("CREATE TABLE IF NOT EXISTS mysql.slow_log2 LIKE mysql.slow_log;\n"
                    + insert_sql(name, "slow_log2", table_rows)
                    + "CALL mysql.rds_rotate_slow_log;\n")


def conf(d, server):
    text = f"""
<source>
  @type rds_slowlog
  tag rds.slow
  host 127.0.0.1
  port {server.port}
  username {mariadb.USER}
  password {mariadb.PASSWORD}
  state_file {d}/state/slow.state
  interval 0.5s
</source>
<match rds.slow>
  @type file
  path {d}/out/rows
  append true
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
  </buffer>
</match>
"""
    os.makedirs(f"{d}/out", exist_ok=True)
    path = lstest.conf(text, d)
    os.chmod(path, 0o640)
    return path


def records(d):
    recs = []
    for fn in sorted(os.listdir(f"{d}/out")):
        with open(f"{d}/out/{fn}", "rb") as f:
            for line in f:
                if line.strip():
                    # strict: the output must be valid UTF-8 JSON whatever sql_text held
                    recs.append(json.loads(line.decode("utf-8")))
    return recs


def by_marker(recs):
    out = {}
    rx = re.compile(r"/\* (\S+) \*/")
    for r in recs:
        m = rx.search(r.get("sql_text", "") if isinstance(r.get("sql_text"), str) else "")
        if m:
            out.setdefault(m.group(1), []).append(r)
    return out


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_row(name, want, got):
    where = f"{name} {want['marker']}: {got}"
    for k in ("rows_sent", "rows_examined", "last_insert_id", "insert_id", "server_id"):
        assert is_int(got[k]) and got[k] == want[k], (k, where)
    for k in ("thread_id", "rows_affected"):
        if has(name, k):
            assert is_int(got[k]) and got[k] == want[k], (k, where)
        else:
            assert k not in got, (k, where)
    assert isinstance(got["query_time"], float), where
    assert abs(got["query_time"] - want["qt"]) < 1e-7, (want["qt"], where)
    assert isinstance(got["lock_time"], float), where
    assert abs(got["lock_time"] - want["lt"]) < 1e-7, (want["lt"], where)
    assert got["db"] == want["db"], where
    assert got["user_host"] == want["user_host"], where
    i = want["marker"].rsplit("-", 1)[1]
    assert got["user"] == f"app{i}" and got["host_ip"] == f"10.0.0.{i}", where
    assert got["host"] == f"web{i}.example", where
    # the event time is start_time (UTC here), microseconds included
    assert abs(got["ev_time"] - want["epoch"]) < 2e-6, (want["epoch"], where)
    if "start_time" in got:
        assert got["start_time"] == want["start_time"], where
    # sql_text: text; valid UTF-8 comes through as is, other bytes never break the JSON
    st = got["sql_text"]
    assert isinstance(st, str), where
    raw = want["sql_raw"]
    try:
        assert st == raw.decode("utf-8"), where
    except UnicodeDecodeError:
        text = raw.split(b" -- ")[0].decode("utf-8")
        # the bad bytes are replaced (U+FFFD), the valid text around them is kept
        assert st.startswith(text + " -- "), where
        assert "\ufffd" in st and st.endswith(" latin1 \ufffd"), where


def run_version(name):
    server = setup_server(name)
    d = lstest.tmpdir()
    cfg = conf(d, server)
    a = make_rows(name, "a", 1, 6)      # will be in slow_log_backup: the salvage read
    b = make_rows(name, "b", 7, 6)      # will be in slow_log: read after logship rotates
    stage(server, name, a)
    stage(server, name, b)
    # the staging really produced the version's column set in both tables
    for t in ("slow_log", "slow_log_backup"):
        cols = [r[0] for r in server.root_sql(f"SHOW COLUMNS FROM mysql.{t}")]
        assert ("thread_id" in cols) == has(name, "thread_id"), (t, cols)
        assert ("rows_affected" in cols) == has(name, "rows_affected"), (t, cols)
    assert server.root_sql("SELECT COUNT(*) FROM mysql.slow_log")[0][0] == "6"
    assert server.root_sql("SELECT COUNT(*) FROM mysql.slow_log_backup")[0][0] == "6"

    p = lstest.run(["-c", cfg, "--oneshot"], timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    got = by_marker(records(d))
    want = {r["marker"]: r for r in a + b}
    dup = {k: len(v) for k, v in got.items() if len(v) > 1}
    assert not dup, f"{name}: duplicated: {dup}"
    missing = sorted(set(want) - set(got))
    assert not missing, f"{name}: lost: {missing}\n{p.stderr[-2000:]}"
    assert set(got) == set(want), f"{name}: unexpected: {sorted(set(got) - set(want))}"
    for m, r in want.items():
        check_row(name, r, got[m][0])
    # logship rotated: b moved to the backup; a second run ships nothing again
    assert server.root_sql("SELECT COUNT(*) FROM mysql.slow_log_backup")[0][0] == "6"
    p = lstest.run(["-c", cfg, "--oneshot"], timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    got = by_marker(records(d))
    assert all(len(v) == 1 for v in got.values()) and set(got) == set(want), \
        f"{name}: second run changed the output"


def test_mysql56_column_set():
    run_version("mysql56")


def test_mysql57_column_set():
    run_version("mysql57")


def test_mysql80_column_set():
    run_version("mysql80")


def test_mariadb103_column_set():
    run_version("mariadb103")
