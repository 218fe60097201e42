"""A real MariaDB server for integration tests (Debian's mariadb-server).

The system tables are initialised once per machine into a template data dir
(mariadb-install-db takes ~4 s) and copied for each server (a copy plus
mariadbd start takes ~0.3 s). Logging goes to tables with every statement
slow-logged (long_query_time 0), so tests mark their queries and filter.

RDS is emulated: mysql.rds_rotate_slow_log / rds_rotate_general_log are
created as RDS defines them (CREATE TABLE ... LIKE, DROP backup, RENAME both
in one statement), SQL SECURITY DEFINER, and a non-root user gets what an
RDS master user has for these tables: SELECT on mysql.* and EXECUTE on the
procedures.

Use shared(module_key) to reuse one server per test file; cleanup of the
lstest registry does not stop shared servers (an atexit hook does).
"""
import atexit, fcntl, os, shutil, subprocess, time

import lstest

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
CLIENT = shutil.which("mariadb") or shutil.which("mysql") or "/usr/bin/mariadb"
TEMPLATE = f"/tmp/logship-mariadb-template-{os.getuid()}"

USER = "rdsuser"
PASSWORD = "rds-pw"

ROTATE_PROCS = """
DROP PROCEDURE IF EXISTS mysql.rds_rotate_slow_log;
DROP PROCEDURE IF EXISTS mysql.rds_rotate_general_log;
DELIMITER //
CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_rotate_slow_log() SQL SECURITY DEFINER
BEGIN
  CREATE TABLE IF NOT EXISTS mysql.slow_log2 LIKE mysql.slow_log;
  DROP TABLE IF EXISTS mysql.slow_log_backup;
  RENAME TABLE mysql.slow_log TO mysql.slow_log_backup, mysql.slow_log2 TO mysql.slow_log;
END//
CREATE DEFINER='root'@'localhost' PROCEDURE mysql.rds_rotate_general_log() SQL SECURITY DEFINER
BEGIN
  CREATE TABLE IF NOT EXISTS mysql.general_log2 LIKE mysql.general_log;
  DROP TABLE IF EXISTS mysql.general_log_backup;
  RENAME TABLE mysql.general_log TO mysql.general_log_backup, mysql.general_log2 TO mysql.general_log;
END//
DELIMITER ;
"""


def available():
    return os.path.exists(MARIADBD) and os.path.exists(INSTALL_DB) and os.path.exists(CLIENT)


def _template():
    """Initialise the system tables once (shared by every server)."""
    lock = open(TEMPLATE + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if os.path.exists(os.path.join(TEMPLATE, "mysql", "slow_log.frm")):
            return TEMPLATE
        tmp = TEMPLATE + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        p = subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={tmp}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db",
                            "--skip-name-resolve"], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("mariadb-install-db failed:\n" + p.stdout + p.stderr)
        shutil.rmtree(TEMPLATE, ignore_errors=True)
        os.rename(tmp, TEMPLATE)
        return TEMPLATE
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


class MariaDB:
    def __init__(self, extra_args=()):
        self.dir = None
        self.extra = list(extra_args)
        self.p = None
        self.port = None

    @property
    def socket(self):
        return os.path.join(self.dir, "mysqld.sock")

    def start(self):
        if not available():
            raise lstest.Skip("mariadb-server is not installed")
        tmpl = _template()
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="ls-mariadb-")
        shutil.copytree(tmpl, os.path.join(self.dir, "data"))
        self.port = lstest.free_port()
        self.log = open(os.path.join(self.dir, "mariadbd.log"), "wb")
        args = [MARIADBD, "--no-defaults", f"--datadir={self.dir}/data", f"--socket={self.socket}",
                f"--port={self.port}", "--bind-address=127.0.0.1", "--user=root",
                f"--pid-file={self.dir}/mariadbd.pid", "--skip-name-resolve", "--skip-log-bin",
                "--log-output=TABLE", "--slow-query-log=1", "--long-query-time=0",
                "--general-log=1", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
                "--skip-innodb-doublewrite", "--performance-schema=OFF",
                f"--log-error={self.dir}/error.log"] + self.extra
        self.args = args
        self.p = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        try:
            self._setup()
        except BaseException:
            self.stop()         # never leave a half-started server behind
            raise
        return self

    def _setup(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("mariadbd exited:\n" + self.error_log())
            r = subprocess.run([CLIENT, "--no-defaults", "-S", self.socket, "-uroot", "-e",
                                "SELECT 1"], capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("mariadbd did not start:\n" + self.error_log())
        self.root_sql(ROTATE_PROCS)
        self.root_sql(f"""
CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';
GRANT SELECT ON mysql.* TO '{USER}'@'%';
GRANT EXECUTE ON PROCEDURE mysql.rds_rotate_slow_log TO '{USER}'@'%';
GRANT EXECUTE ON PROCEDURE mysql.rds_rotate_general_log TO '{USER}'@'%';
""")

    def kill9_restart(self):
        """SIGKILL the server, start it again on the same data directory and port."""
        self.p.kill()
        self.p.wait()
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)
        self._setup()

    def error_log(self):
        try:
            return lstest.read(os.path.join(self.dir, "error.log"))[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None
        if self.dir and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _client(self, sql, user="root", password=None, tcp=False, check=True):
        args = [CLIENT, "--no-defaults", "-B", "-N", "-r"]
        if tcp:
            args += ["-h", "127.0.0.1", "-P", str(self.port)]
        else:
            args += ["-S", self.socket]
        args += [f"-u{user}"]
        if password:
            args += [f"-p{password}"]
        r = subprocess.run(args, input=sql.encode(), capture_output=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"SQL failed ({r.returncode}): {sql[:300]}\n"
                                 + r.stderr.decode("utf-8", "replace"))
        return r

    def root_sql(self, sql):
        """Run statements as root; returns rows (lists of str) of the last result."""
        out = self._client(sql).stdout.decode("utf-8", "replace")
        return [line.split("\t") for line in out.splitlines()]

    def user_sql(self, sql, check=True):
        """Run statements as the RDS-like master user over TCP."""
        return self._client(sql, USER, PASSWORD, tcp=True, check=check)

    def rotate(self, which="slow"):
        self.user_sql(f"CALL mysql.rds_rotate_{which}_log;")

    def slow_markers(self, marker_prefix):
        """Markers of queries present in slow_log and slow_log_backup."""
        rows = []
        for t in ("slow_log", "slow_log_backup"):
            r = self._client(f"SELECT sql_text FROM mysql.{t} WHERE sql_text LIKE "
                             f"'SELECT %{marker_prefix}%'", check=False)
            rows += r.stdout.decode("utf-8", "replace").splitlines()
        return rows


_shared = {}


def shared(key="default", extra_args=()):
    """One server per key for the whole test file (started on first use)."""
    db = _shared.get(key)
    if db is None or db.p is None or db.p.poll() is not None:
        db = MariaDB(extra_args).start()
        _shared[key] = db
    return db


@atexit.register
def _stop_shared():
    for db in _shared.values():
        try:
            db.stop()
        except Exception:  # noqa: BLE001
            pass
    _shared.clear()
