"""Local faults: the disk, the file system and the process limits turn against the agent.

Each case runs the real pipeline (tail with a pos_file -> file buffer -> the `fault` test
output, which appends every delivered line to a file) and breaks one thing underneath it:
the buffer's file system fills up (a 1 MB tmpfs), becomes read-only (tmpfs remounted ro),
or the buffer directory is deleted; the fd limit is lower than the number of files to tail;
a tailed log is replaced by a directory or a FIFO; a log cannot be read (the agent runs as
nobody). In every case the agent must say what is wrong in its log, keep running what can
run, and deliver every line it had read exactly once (and, once the fault is gone, every
line at all).
"""
import os, re, shutil, signal, time

import lstest
from lstest import tmpdir, wait_until
import relkit
from relkit import PrivAgent, check_exactly_once, delivered_lines, tail_to_fault, write_lines


def _alive(a, what):
    assert a.alive(), f"agent died ({what}); log:\n" + lstest.tail_text(a.all_logs(), 40)


def test_buffer_filesystem_full_then_drains():
    """1 MB tmpfs buffer, output failing for a while, 3 MB of input: ENOSPC is logged, the
    input waits (no half frame is left), and after the output recovers every line arrives
    exactly once."""
    d = tmpdir()
    buf = relkit.tmpfs(os.path.join(d, "buf"), "1m")
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    c = tail_to_fault(d, inp, buf, fault="fail_for 6", buffer_extra="    chunk_limit_size 256k")
    a = lstest.Agent(c).start()
    keys = []
    for i in range(30):
        keys += write_lines(inp, "L", i * 1000, 1000, pad=90)   # ~100 KB each, 3 MB total
    a.wait_log(r"(No space left|ENOSPC|\(28:)", timeout=20)
    _alive(a, "buffer file system full")
    relkit.wait_delivered(os.path.join(d, "delivered"), keys, a, timeout=90)
    time.sleep(0.8)
    check_exactly_once(delivered_lines(os.path.join(d, "delivered")), keys, "full buffer fs")
    _alive(a, "after the disk drained")
    a.stop()


def test_out_file_full_buffer_disk_drains():
    """out_file (append true) whose target is read-only while the input fills a 1 MB tmpfs
    buffer to the last page: each chunk needs a new state file before it can be written and
    free its space, which only the buffer's reserve can hold; once the target is writable
    every line arrives exactly once."""
    d = tmpdir()
    buf = relkit.tmpfs(os.path.join(d, "buf"), "1m")
    outdir = os.path.join(d, "out")
    os.makedirs(outdir)
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    c = lstest.conf(relkit.tail_source(inp, d) + relkit.fault_match(
        d, buf, buffer_extra="    chunk_limit_size 128k",
        output=f"@type file\n  path {outdir}/o\n  append true"), d)
    relkit.bind_ro(outdir)
    a = lstest.Agent(c).start()
    keys = []
    for i in range(20):
        keys += write_lines(inp, "L", i * 1000, 1000, pad=90)   # ~100 KB each, 2 MB in all
    a.wait_log(r"(No space left|\(28:)", timeout=20)
    a.wait_log(r"Read-only file system", timeout=20)
    relkit.fill(os.path.join(buf, "filler"))
    _alive(a, "buffer file system full, target read-only")
    relkit.unmount(outdir)

    def delivered():
        return [l for p in sorted(os.listdir(outdir)) for l in delivered_lines(os.path.join(outdir, p))]
    wait_until(lambda: set(keys) <= set(relkit.line_keys(delivered())), 60, 0.3,
               what=f"{len(keys)} lines in {outdir}")
    time.sleep(0.8)
    check_exactly_once(delivered(), keys, "out_file, full buffer fs")
    assert "gave up the 64 KiB reserve" in a.log(), lstest.tail_text(a.log(), 20)
    _alive(a, "after the disk drained")
    a.stop()


def test_buffer_filesystem_read_only_then_writable():
    """A read-only bind mount laid over the buffer directory while the agent runs (a
    remount of the file system itself is refused while files are open for writing): new
    chunk files cannot be created (EROFS, logged), the input waits; when the mount goes
    away, everything arrives exactly once."""
    d = tmpdir()
    buf = os.path.join(d, "buf")
    os.makedirs(buf)
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    out = os.path.join(d, "delivered")
    c = tail_to_fault(d, inp, buf)
    a = lstest.Agent(c).start()
    keys = write_lines(inp, "A", 0, 500)
    relkit.wait_delivered(out, keys, a, timeout=30)
    relkit.bind_ro(buf)
    for i in range(4):
        keys += write_lines(inp, "B", i * 200, 200)
        time.sleep(0.4)
    a.wait_log(r"(Read-only file system|EROFS|\(30:)", timeout=20)
    _alive(a, "buffer directory read-only")
    relkit.unmount(buf)
    keys += write_lines(inp, "C", 0, 500)
    relkit.wait_delivered(out, keys, a, timeout=60)
    time.sleep(0.8)
    check_exactly_once(delivered_lines(out), keys, "read-only buffer dir")
    a.stop()


def test_buffer_directory_deleted_while_running():
    """rm -rf of the buffer directory while a staged chunk holds records the input has
    already committed: the chunk is rewritten from the open file, the directory is made
    again, and every line arrives exactly once."""
    d = tmpdir()
    buf = os.path.join(d, "buf")
    inp = os.path.join(d, "in.log")
    lstest.write(inp, "")
    out = os.path.join(d, "delivered")
    c = tail_to_fault(d, inp, buf)
    lstest.write(c, lstest.read(c).replace("flush_interval 0.3", "flush_interval 3"))
    a = lstest.Agent(c).start()
    keys = write_lines(inp, "A", 0, 300)
    relkit.wait_delivered(out, keys, a, timeout=30)
    keys += write_lines(inp, "B", 0, 300)
    # B is read and committed into a staged chunk (the pos_file moved past it)
    wait_until(lambda: any(n.startswith("logship.b") for n in os.listdir(buf)), 10,
               what="a staged chunk")
    time.sleep(0.5)
    shutil.rmtree(buf)
    for i in range(5):
        keys += write_lines(inp, "C", i * 300, 300)
        time.sleep(0.3)
    relkit.wait_delivered(out, keys, a, timeout=60)
    time.sleep(0.8)
    _alive(a, "buffer directory deleted")
    check_exactly_once(delivered_lines(out), keys, "buffer dir deleted")
    log = a.log()
    assert "creating it again" in log or "deleted while open" in log, lstest.tail_text(log, 20)
    a.stop()


def test_fd_limit_lower_than_files_to_tail():
    """RLIMIT_NOFILE 64 and 150 files in the glob: EMFILE is reported, the files that could
    be opened are tailed, and nothing is delivered twice. When files are removed and the
    limit allows, the rest are picked up."""
    d = tmpdir()
    logs = os.path.join(d, "logs")
    os.makedirs(logs)
    keys = {}
    for i in range(150):
        keys[i] = write_lines(os.path.join(logs, f"f{i:03d}.log"), f"F{i}", 0, 5)
    out = os.path.join(d, "delivered")
    c = tail_to_fault(d, os.path.join(logs, "*.log"), src_extra="  open_on_every_update false")
    a = PrivAgent(c, preexec=relkit.nofile_limit(64)).start()
    a.wait_log(r"(Too many open files|EMFILE|\(24:)", timeout=30)
    wait_until(lambda: delivered_lines(out), 30, what="the files that could be opened delivered")
    time.sleep(2.0)    # and anything else they would deliver
    _alive(a, "fd limit")
    got = delivered_lines(out)
    # whatever was delivered, was delivered once
    check_exactly_once(got, relkit.line_keys(got), "fd limit")
    # delete most files (20 left: room even under valgrind, which takes fds of its own);
    # the ones not read yet must arrive eventually
    done = set(relkit.line_keys(got))
    left = [i for i in keys if not set(keys[i]) <= done]
    for i in keys:
        if i not in left[:20]:
            os.unlink(os.path.join(logs, f"f{i:03d}.log"))
    want = [k for i in left[:20] for k in keys[i]]
    relkit.wait_delivered(out, want, a, timeout=60)
    check_exactly_once(delivered_lines(out), relkit.line_keys(delivered_lines(out)), "fd limit")
    _alive(a, "fd limit after files were removed")
    a.stop()


def _replaced_case(make_odd):
    d = tmpdir()
    logs = os.path.join(d, "logs")
    os.makedirs(logs)
    fa, fb = os.path.join(logs, "a.log"), os.path.join(logs, "b.log")
    out = os.path.join(d, "delivered")
    ka = write_lines(fa, "A", 0, 100)
    kb = write_lines(fb, "B", 0, 100)
    c = tail_to_fault(d, os.path.join(logs, "*.log"))
    a = lstest.Agent(c).start()
    relkit.wait_delivered(out, ka + kb, a, timeout=30)
    os.unlink(fa)
    make_odd(fa)
    # the other file keeps flowing while the odd one sits in the glob
    for i in range(6):
        kb += write_lines(fb, "B", 100 + i * 50, 50)
        time.sleep(0.5)
    relkit.wait_delivered(out, kb, a, timeout=30)
    _alive(a, "a log replaced")
    check_exactly_once(delivered_lines(out), ka + kb, "log replaced")
    return a, d


def test_log_replaced_by_a_directory():
    a, _ = _replaced_case(os.mkdir)
    a.stop()


def test_log_replaced_by_a_fifo():
    """A FIFO must not be opened blocking (that would stall the whole loop)."""
    a, d = _replaced_case(os.mkfifo)
    rc = a.stop(timeout=20)
    assert rc == 0, f"exit {rc}: " + lstest.tail_text(a.log(), 20)


def test_tail_path_symlink_to_a_device_is_logged():
    """A configured path that is a symlink to /dev/zero is not read (it never ends), and the
    log says why, once; the other path keeps flowing."""
    d = tmpdir()
    dev, good = os.path.join(d, "dev.log"), os.path.join(d, "good.log")
    os.symlink("/dev/zero", dev)
    keys = write_lines(good, "G", 0, 50)
    c = tail_to_fault(d, f"{dev},{good}")
    a = lstest.Agent(c).start()
    relkit.wait_delivered(os.path.join(d, "delivered"), keys, a, timeout=30)
    a.wait_log(r"'%s' \(-> /dev/zero\) is a character device, not a regular file: not followed"
               % re.escape(dev), timeout=10)
    time.sleep(2.5)       # two more refreshes: still one line
    log = a.log()
    assert log.count("is a character device") == 1, lstest.tail_text(log, 10)
    _alive(a, "a path that is a device")
    a.stop()


def test_permission_denied_as_unprivileged_user():
    prefix = relkit.drop_to_nobody()
    d = tmpdir()
    os.chmod(d, 0o755)
    logs = os.path.join(d, "logs")
    os.makedirs(logs)
    os.chmod(logs, 0o755)
    secret, ok = os.path.join(logs, "secret.log"), os.path.join(logs, "ok.log")
    write_lines(secret, "S", 0, 10)
    os.chmod(secret, 0o600)                      # root's, unreadable for nobody
    kok = write_lines(ok, "O", 0, 100)
    os.chmod(ok, 0o644)
    work = os.path.join(d, "work")
    os.makedirs(work)
    os.chown(work, 65534, 65534)
    c = tail_to_fault(work, os.path.join(logs, "*.log"))
    os.chmod(c, 0o644)
    a = PrivAgent(c, prefix=prefix).start()
    out = os.path.join(work, "delivered")
    relkit.wait_delivered(out, kok, a, timeout=30)
    a.wait_log(r"secret\.log.*(Permission denied|EACCES|\(13:)|(Permission denied|\(13:).*secret\.log",
               timeout=10)
    kok += write_lines(ok, "O", 100, 100)
    relkit.wait_delivered(out, kok, a, timeout=30)
    _alive(a, "permission denied")
    got = delivered_lines(out)
    assert not [l for l in got if l.startswith("S ")], "nobody read root's 0600 file?"
    check_exactly_once(got, kok, "permission denied")
    # once readable, the file is picked up (the tail keeps retrying it)
    os.chmod(secret, 0o644)
    relkit.wait_delivered(out, [f"S {i}" for i in range(10)], a, timeout=30)
    a.signal(signal.SIGTERM)
    assert a.wait(20) == 0
