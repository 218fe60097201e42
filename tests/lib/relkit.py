"""Helpers for the reliability and security tests (test_reliability*, test_local_faults,
test_security).

- PrivAgent: an lstest.Agent started with a command prefix (setpriv, to drop root) and a
  preexec_fn (a low RLIMIT_NOFILE);
- tmpfs(): a small tmpfs mounted for a test (full disk, read-only remount), unmounted by
  cleanup; Skip when this sandbox may not mount;
- tail_to_fault(): the usual pipeline under test: tail (pos_file) -> file buffer -> the
  `fault` test output, which appends each delivered chunk's lines to a file;
- delivered_lines() / check_exactly_once(): what reached the output, and the verdict;
- fill(): take a file system's last free pages;
- rss_kb(), have_plugin(), http_get().
"""
import http.client, os, re, resource, subprocess

import lstest

_mounts = []


def have_plugin(kind, name):
    p = lstest.run(["--list-plugins"])
    return re.search(rf"^{kind}\s+{name}\b", p.stdout, re.M) is not None


def need_s3():
    if not have_plugin("output", "s3"):
        raise lstest.Skip("@type s3 is not built yet (logship --list-plugins has no s3)")


def _umount_all():
    while _mounts:
        m = _mounts.pop()
        subprocess.run(["umount", "-l", m], capture_output=True)


def tmpfs(path, size="1m"):
    """Mount a tmpfs of `size` on path (created). Skip if mount is not permitted."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        raise lstest.Skip("mounting a small tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise lstest.Skip(f"mount -t tmpfs is not permitted here: {p.stderr.strip()}")
    if not _mounts:
        lstest.on_cleanup(_umount_all)
    _mounts.append(path)
    return path


def bind_ro(path):
    """Lay a read-only bind mount of path over itself (open files stay writable; new
    files, renames and unlinks get EROFS). Skip if mount is not permitted."""
    if os.geteuid() != 0:
        raise lstest.Skip("a read-only bind mount needs root")
    p = subprocess.run(["mount", "--bind", "-o", "ro", path, path], capture_output=True, text=True)
    if p.returncode != 0:
        raise lstest.Skip(f"mount --bind is not permitted here: {p.stderr.strip()}")
    if not _mounts:
        lstest.on_cleanup(_umount_all)
    _mounts.append(path)


def unmount(path):
    p = subprocess.run(["umount", path], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    if path in _mounts:
        _mounts.remove(path)


def remount(path, opt):
    p = subprocess.run(["mount", "-o", f"remount,{opt}", path], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


class PrivAgent(lstest.Agent):
    """An Agent with a command prefix (e.g. setpriv ...) and a preexec_fn."""

    def __init__(self, config_path, prefix=(), preexec=None, **kw):
        super().__init__(config_path, **kw)
        self.prefix = list(prefix)
        self.preexec = preexec

    def start(self):
        self.n += 1
        self.out_path = os.path.join(self.dir, f"{self.name}.{self.n}.out")
        self.err_path = os.path.join(self.dir, f"{self.name}.{self.n}.log")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        cmd = self.prefix + lstest.WRAP + [lstest.LOGSHIP, "-c", self.config] + self.args
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, env=self.env,
                                  cwd=self.dir, preexec_fn=self.preexec)
        lstest._procs.append((self.p, self.name))
        return self


def nofile_limit(n):
    def fn():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return fn


def drop_to_nobody():
    if os.geteuid() != 0:
        raise lstest.Skip("dropping privileges needs root")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def tail_source(path, d, tag="t", extra="", parse="@type none"):
    return f"""
<source>
  @type tail
  path {path}
  pos_file {d}/tail.pos
  tag {tag}
  read_from_head true
  refresh_interval 1
  rotate_wait 1
{extra}
  <parse>
    {parse}
  </parse>
</source>"""


def fault_match(d, buf, fault="", buffer_extra="", fmt="@type single_value", output=None):
    """output replaces the `fault` output's lines (@type, path, fault) with another's."""
    output = output or f"@type fault\n  path {d}/delivered\n  {fault}"
    return f"""
<match **>
  {output}
  <format>
    {fmt}
  </format>
  <buffer []>
    @type file
    path {buf}
    flush_mode interval
    flush_interval 0.3
    retry_wait 0.3
    retry_max_interval 1
    retry_forever true
{buffer_extra}
  </buffer>
</match>"""


def tail_to_fault(d, path, buf=None, fault="", buffer_extra="", src_extra="", head="",
                  fmt="@type single_value"):
    buf = buf or os.path.join(d, "buf")
    return lstest.conf(head + tail_source(path, d, extra=src_extra) +
                       fault_match(d, buf, fault, buffer_extra, fmt), d)


def fill(path):
    """Append to path until its file system is full (a tmpfs: to the last page)."""
    try:
        with open(path, "ab", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError:
        pass


def delivered_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").splitlines()


def write_lines(path, tag, start, n, pad=60):
    """Append n numbered lines "<tag> <i> xxx"; returns the list of their keys."""
    keys = [f"{tag} {i}" for i in range(start, start + n)]
    with open(path, "a") as f:
        f.write("".join(f"{k} {'x' * pad}\n" for k in keys))
    return keys


def line_keys(lines):
    return [" ".join(l.split()[:2]) for l in lines if l.strip()]


def check_exactly_once(got_lines, expected_keys, what=""):
    got = line_keys(got_lines)
    seen, dup = set(), []
    for k in got:
        if k in seen:
            dup.append(k)
        seen.add(k)
    missing = [k for k in expected_keys if k not in seen]
    assert not dup and not missing, (f"{what}: {len(got)} delivered, {len(dup)} duplicates "
                                     f"(first {dup[:3]}), {len(missing)} missing (first {missing[:3]})")


def wait_delivered(path, expected_keys, agent, timeout=60):
    want = set(expected_keys)

    def ok():
        return want <= set(line_keys(delivered_lines(path)))
    try:
        lstest.wait_until(ok, timeout, 0.2, what=f"{len(want)} lines delivered")
    except AssertionError:
        got = set(line_keys(delivered_lines(path)))
        raise AssertionError(f"{len(want - got)} of {len(want)} lines not delivered "
                             f"(first {sorted(want - got)[:3]}); log:\n"
                             + lstest.tail_text(agent.all_logs(), 30))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def http_get(port, path, host="127.0.0.1", timeout=5):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()
