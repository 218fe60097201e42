"""DuckDB as the independent Parquet reader of the tests (no Parquet library is in Debian).

The npm package @duckdb/node-api (pinned below) runs on the machine's Node.js. It is
installed on first use from the npm registry into <build dir>/duckdb, next to the logship
binary under test, so a fresh machine needs nothing by hand; later runs reuse it.
query(sql...) runs statements in one in-memory database and returns each result as a list
of row dicts (values as DuckDB's JSON rendering: BIGINT and timestamps as strings).
"""
import fcntl, json, os, shutil, subprocess
import lstest

VERSION = "1.5.6-r.1"
DIR = os.path.join(os.path.dirname(os.path.abspath(lstest.LOGSHIP)), "duckdb")

QUERY_JS = r"""
import { DuckDBInstance } from '@duckdb/node-api';
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
import { readFileSync } from 'node:fs';
// bytes this process has read with read()/pread() so far (all threads): what a query
// costs in storage reads, for any reader (DuckDB's own total_bytes_read misses read_json's)
const rchar = () => Number(/rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))[1]);
const out = [];
const reads = [];
for (const sql of JSON.parse(process.argv[2])) {
  const before = rchar();
  const r = await con.runAndReadAll(sql);
  reads.push(rchar() - before);
  out.push(r.getRowObjectsJson());
}
process.stdout.write(JSON.stringify(process.argv[3] === 'reads' ? [out, reads] : out));
"""


def ensure():
    mod = os.path.join(DIR, "node_modules", "@duckdb", "node-api", "package.json")
    os.makedirs(DIR, exist_ok=True)
    with open(os.path.join(DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(mod) or json.load(open(mod)).get("version") != VERSION:
            assert shutil.which("npm"), "npm is needed to install DuckDB (@duckdb/node-api)"
            if not os.path.exists(os.path.join(DIR, "package.json")):
                lstest.write(os.path.join(DIR, "package.json"), '{"private": true}\n')
            p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                                f"@duckdb/node-api@{VERSION}"], cwd=DIR, capture_output=True,
                               text=True, timeout=900)
            assert p.returncode == 0, f"npm install @duckdb/node-api failed:\n{p.stderr[-3000:]}"
        lstest.write(os.path.join(DIR, "query.mjs"), QUERY_JS)


def query(*sqls, reads=False):
    """Results of each statement; with reads=True also the bytes each one read from files."""
    ensure()
    p = subprocess.run(["node", os.path.join(DIR, "query.mjs"), json.dumps(list(sqls))]
                       + (["reads"] if reads else []),
                       capture_output=True, text=True, timeout=300, cwd=DIR)
    assert p.returncode == 0, f"DuckDB failed on {str(sqls)[:500]}:\n{p.stderr[-3000:]}"
    return json.loads(p.stdout)


def rows(sql):
    return query(sql)[0]


def profile(sql, tmp):
    """Run sql with DuckDB's detailed JSON profiler; returns the profile's top-level metrics
    (total_bytes_read, cumulative_rows_scanned, ...). tmp: a directory for the profile file."""
    out = os.path.join(tmp, "duckdb-profile.json")
    query("PRAGMA enable_profiling='json'", "SET profiling_mode='detailed'",
          f"PRAGMA profiling_output='{out}'", sql)
    with open(out) as f:
        return json.load(f)
