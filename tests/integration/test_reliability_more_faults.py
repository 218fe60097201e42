"""The faults issue 14 listed as "not yet tried": a read-only remount of the buffer's and of the
pos_file's file system while logship runs, a log deleted and recreated with the same inode
number, and large wall-clock jumps (libfaketime) across a timekey boundary. Each runs the real
pipeline (tail with a pos_file -> file buffer -> the `fault` test output, which appends every
delivered line to a file): nothing lost, nothing duplicated, and the log says what happened.
"""
import os, subprocess, time

import lstest
from lstest import tmpdir
import relkit
from relkit import check_exactly_once, delivered_lines, write_lines


def _try_remount_ro(path, timeout=10):
    """mount -o remount,ro; the kernel refuses (EBUSY) while a file there is open for writing,
    so retry for a while. True when the file system became read-only."""
    end = time.time() + timeout
    while time.time() < end:
        p = subprocess.run(["mount", "-o", "remount,ro", path], capture_output=True, text=True)
        if p.returncode == 0:
            return True
        time.sleep(0.05)
    return False


def _alive(a, what):
    assert a.alive(), f"agent died ({what}); log:\n" + lstest.tail_text(a.all_logs(), 40)


def test_buffer_file_system_remounted_read_only_while_running():
    d = tmpdir()
    buf = relkit.tmpfs(os.path.join(d, "buf"), "8m")
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    out = os.path.join(d, "delivered")
    a = lstest.Agent(relkit.tail_to_fault(d, inp, buf)).start()
    keys = write_lines(inp, "A", 0, 300)
    relkit.wait_delivered(out, keys, a, timeout=30)
    ro = _try_remount_ro(buf)
    keys += write_lines(inp, "B", 0, 300)
    if ro:
        a.wait_log(r"(Read-only file system|\(30:)", timeout=20)
    time.sleep(1.5)
    _alive(a, "buffer file system read-only")
    relkit.remount(buf, "rw")
    keys += write_lines(inp, "C", 0, 300)
    relkit.wait_delivered(out, keys, a, timeout=60)
    time.sleep(1.0)
    check_exactly_once(delivered_lines(out), keys, "buffer remounted read-only")
    a.stop()
    print(f"    remount,ro of the buffer's file system {'took effect' if ro else 'was refused (busy)'}",
          flush=True)


def test_pos_file_file_system_read_only_while_running_and_at_restart():
    """logship keeps its pos_file open for writing, so the kernel refuses a read-only remount
    of its file system while logship runs (EBUSY): asserted, as it is what protects the
    positions. A stop, the remount, and a start: the start says why it cannot keep positions,
    and once writable again everything arrives exactly once."""
    d = tmpdir()
    posd = relkit.tmpfs(os.path.join(d, "pos"), "1m")
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    out = os.path.join(d, "delivered")
    c = lstest.conf(relkit.tail_source(inp, posd) + relkit.fault_match(d, os.path.join(d, "buf")),
                    d)
    a = lstest.Agent(c).start()
    keys = write_lines(inp, "A", 0, 300)
    relkit.wait_delivered(out, keys, a, timeout=30)
    assert not _try_remount_ro(posd, 2), "remount,ro succeeded under an open pos_file"
    keys += write_lines(inp, "B", 0, 300)
    relkit.wait_delivered(out, keys, a, timeout=30)
    a.stop()
    assert _try_remount_ro(posd), "remount,ro refused with logship stopped"
    keys += write_lines(inp, "C", 0, 300)
    a.start()
    time.sleep(2.0)
    log = a.log()
    assert "pos_file" in log and ("Read-only" in log or "(30:" in log), lstest.tail_text(log, 20)
    if a.alive():
        a.stop()
    relkit.remount(posd, "rw")
    a.start()
    relkit.wait_delivered(out, keys, a, timeout=30)
    time.sleep(1.0)
    check_exactly_once(delivered_lines(out), keys, "pos_file read-only at restart")
    a.stop()


def test_log_deleted_and_recreated_with_the_same_inode():
    """rm + create again, as some tools do: once logship has let the deleted file go
    (rotate_wait), its inode number is free and ext4 gives it to the next file created in
    the directory. The new file must be read from its head, the old one's lines not again."""
    _deleted_and_recreated(header=False)


def test_log_deleted_and_recreated_with_the_same_inode_and_first_line():
    """The same with a banner every file starts with: same inode, same first line, so the
    same source key as the deleted file, whose lines the outputs still remembered."""
    _deleted_and_recreated(header=True)


def _deleted_and_recreated(header):
    d = tmpdir()
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    out = os.path.join(d, "delivered")
    a = lstest.Agent(relkit.tail_to_fault(d, inp)).start()
    keys = []
    same = 0
    for r in range(4):
        if header and r == 0:
            lstest.write(inp, "# banner\n")
        keys += write_lines(inp, f"G{r}", 0, 200 + 50 * r)
        relkit.wait_delivered(out, keys, a, timeout=30)
        ino = os.stat(inp).st_ino
        os.unlink(inp)
        lstest.wait_until(lambda: a.log().count(f"stop following '{inp}'") > r, 20,
                          what="the deleted file let go")
        # the freed inode is usually the next one ext4 hands out in this directory
        lstest.write(inp, "# banner\n" if header else "")
        same += os.stat(inp).st_ino == ino
        keys += write_lines(inp, f"H{r}", 0, 400 + 50 * r)   # longer than the old file
    relkit.wait_delivered(out, keys, a, timeout=30)
    time.sleep(1.5)
    check_exactly_once([l for l in delivered_lines(out) if not l.startswith("#")], keys,
                       "deleted and recreated")
    a.stop()
    print(f"    {same} of 4 recreated files had the deleted file's inode", flush=True)


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def test_wall_clock_jumps_back_and_forward_across_a_timekey_boundary():
    """libfaketime moves logship's wall clock (a faketimerc file it reads again on every call;
    the monotonic clock stays real, as with an NTP step): just before a timekey boundary, past
    it, an hour back, then two hours forward. Every record arrives once, and the chunk opened
    before the jump back is not held for the hour the clock has to catch up."""
    if not os.path.exists(FAKETIME_LIB):
        raise lstest.Skip("libfaketime is not installed (packaging/install-deps.sh test)")
    d = tmpdir()
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    out = os.path.join(d, "delivered")
    rc = os.path.join(d, "faketimerc")
    tk = 10

    def shift(off):
        lstest.write(rc, f"{off:+d}\n")

    def fake_now(off):
        return time.time() + off

    # a few seconds before a boundary of the fake clock
    off = int((tk - 3) - time.time() % tk)
    shift(off)
    c = lstest.conf(relkit.tail_source(inp, d) + f"""
<match **>
  @type fault
  path {out}
  <format>
    @type single_value
  </format>
  <buffer time>
    @type file
    path {d}/buf
    timekey {tk}
    timekey_wait 1
    retry_wait 0.3
  </buffer>
</match>""", d)
    env = dict(os.environ, LD_PRELOAD=FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE=rc,
               FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1",
               ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1:abort_on_error=0:exitcode=99")
    a = lstest.Agent(c, env=env).start()
    a.wait_log("following tail of")
    keys = write_lines(inp, "A", 0, 200)              # slice S
    s0 = int(fake_now(off)) // tk
    lstest.wait_until(lambda: int(fake_now(off)) // tk != s0, 2 * tk, what="the fake boundary")
    time.sleep(0.3)
    keys += write_lines(inp, "B", 0, 200)             # slice S + 1
    time.sleep(0.5)
    off -= 3600
    shift(off)                                        # an hour back
    keys += write_lines(inp, "C", 0, 200)
    relkit.wait_delivered(out, keys, a, timeout=4 * tk)
    assert "the clock went back" in a.log(), lstest.tail_text(a.log(), 20)
    off += 7200
    shift(off)                                        # two hours forward
    keys += write_lines(inp, "D", 0, 200)
    relkit.wait_delivered(out, keys, a, timeout=4 * tk)
    time.sleep(1.0)
    check_exactly_once(delivered_lines(out), keys, "clock jumps")
    _alive(a, "clock jumps")
    a.stop()


class ResetProxy:
    """A TCP proxy to 127.0.0.1:port whose reset() ends every open connection with a RST."""

    def __init__(self, port):
        import socket, threading
        self.port, self.conns, self.lock = port, [], threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.listen_port = self.ls.getsockname()[1]
        self.resets = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket, threading
        while True:
            try:
                c, _ = self.ls.accept()
                u = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass

    def reset(self):
        import socket, struct
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass
        self.resets += len(conns) // 2


def test_rds_server_killed_mid_harvest_and_connections_reset():
    """rds_slowlog in daemon mode (harvest every 0.5 s) through a TCP proxy that resets every
    connection at random instants, and a MariaDB killed with SIGKILL and started again in the
    middle of harvests: every slow-logged row once; the log says what broke."""
    import json, random, re
    import mariadb
    if not mariadb.available():
        raise lstest.Skip("mariadb-server is not installed")
    server = mariadb.MariaDB().start()
    lstest.on_cleanup(server.stop)
    proxy = ResetProxy(server.port)
    d = tmpdir()
    cfg = lstest.conf(f"""
<source>
  @type rds_slowlog
  tag rds.slow
  host 127.0.0.1
  port {proxy.listen_port}
  username {mariadb.USER}
  password {mariadb.PASSWORD}
  state_file {d}/state/rds.state
  interval 0.5s
</source>
""" + relkit.fault_match(d, f"{d}/buf", fmt="@type json"), d)
    os.chmod(cfg, 0o640)
    rx = re.compile(r"^SELECT SLEEP\([0-9.]+\), '(rf-\d+)'$")

    def got():
        out = []
        for line in delivered_lines(f"{d}/delivered"):
            m = rx.match(json.loads(line).get("sql_text", "")) if line.strip() else None
            if m:
                out.append(m.group(1))
        return out
    seed = int(os.environ.get("SEED", time.time()))
    rnd = random.Random(seed)
    a = lstest.Agent(cfg).start()
    want, n = [], 0
    rounds = 12 if lstest.LONG else 5
    for r in range(rounds):
        k = rnd.randint(20, 80)
        server.user_sql("USE mysql;\n" + "".join(f"SELECT SLEEP(0), 'rf-{i}';\n"
                                                 for i in range(n, n + k)))
        want += [f"rf-{i}" for i in range(n, n + k)]
        n += k
        time.sleep(rnd.uniform(0.3, 1.0))
        if r % 2 == 0:
            proxy.reset()
        else:
            server.kill9_restart()
    lstest.wait_until(lambda: set(want) <= set(got()), 60, 0.3, what="every row delivered")
    time.sleep(1.5)
    _alive(a, "rds faults")
    a.stop()
    check_exactly_once(got(), want, f"rds faults, seed {seed}")
    print(f"    seed {seed}: {len(want)} rows once through {proxy.resets} resets and "
          f"{rounds // 2} server kills", flush=True)
