"""Helpers shared by the integration tests.

Everything a test starts (agents, servers) is registered here and stopped by
cleanup() after each test, even when the test fails. Servers listen on
127.0.0.1 only. Other modules in this folder start the real components:
s3server.py (moto_server with IAM auth), nginx.py, mariadb.py.
"""
import os, re, shutil, signal, socket, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGSHIP = os.environ.get("LOGSHIP", os.path.join(ROOT, "build", "logship"))
SANITIZE = os.environ.get("SANITIZE", "")
LONG = os.environ.get("LONG", "") not in ("", "0")   # longer reliability runs
# LOGSHIP_WRAP="valgrind --error-exitcode=97 --leak-check=full --suppressions=$PWD/tests/valgrind.supp":
# run every logship under it
WRAP = os.environ.get("LOGSHIP_WRAP", "").split()

class Skip(Exception):
    pass

_procs = []       # (Popen, name) stopped by cleanup
_dirs = []
_finalizers = []  # callables run by cleanup (servers)

def on_cleanup(fn):
    _finalizers.append(fn)

def cleanup(final=False):
    while _finalizers:
        fn = _finalizers.pop()
        try:
            fn()
        except Exception:  # noqa: BLE001
            pass
    for p, _ in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except Exception:  # noqa: BLE001
                pass
    _procs.clear()
    if os.environ.get("KEEP_TMP"):
        _dirs.clear()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    _dirs.clear()

def tmpdir(prefix="ls-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d

def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, mode) as f:
        f.write(text)
    return path

def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

def wait_until(fn, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

def sanitizer_env(env=None):
    env = dict(os.environ if env is None else env)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=98")
    if any("valgrind" in w for w in WRAP):
        # Debian's PCRE2 is not built for valgrind: its JIT code reads as uninitialised
        env.setdefault("LOGSHIP_PCRE2_JIT", "0")
    return env

SAN_RE = re.compile(r"(AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer)")

# valgrind's reports (with LOGSHIP_WRAP=valgrind ...): memory errors and real leaks
VG_RE = re.compile(r"==\d+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
                   r"Syscall param|Mismatched free|Source and destination overlap|"
                   r"\s*definitely lost: [1-9]|\s*indirectly lost: [1-9])")

def check_sanitizer(text, what="logship"):
    m = SAN_RE.search(text or "") or (VG_RE.search(text or "") if WRAP else None)
    if m:
        i = m.start()
        raise AssertionError(f"{what}: sanitizer report:\n{text[max(0, i-200):i+3000]}")

def run(args, input=None, timeout=60, env=None, cwd=None, check_san=True):
    """Run logship to completion; returns CompletedProcess (text)."""
    e = sanitizer_env(env)
    p = subprocess.run(WRAP + [LOGSHIP] + list(args), input=input, capture_output=True, text=True,
                       timeout=timeout, env=e, cwd=cwd)
    if check_san:
        check_sanitizer(p.stderr, "logship " + " ".join(args))
    return p

def conf(text, d=None, name="logship.conf"):
    d = d or tmpdir()
    return write(os.path.join(d, name), text)

class Agent:
    """A logship process running a configuration, output captured to files."""

    def __init__(self, config_path, args=(), env=None, name="logship"):
        self.config = config_path
        self.dir = os.path.dirname(config_path)
        self.args = list(args)
        self.env = sanitizer_env(env)
        self.name = name
        self.p = None
        self.n = 0
        self.out_path = self.err_path = None

    def start(self):
        self.n += 1
        self.out_path = os.path.join(self.dir, f"{self.name}.{self.n}.out")
        self.err_path = os.path.join(self.dir, f"{self.name}.{self.n}.log")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen(WRAP + [LOGSHIP, "-c", self.config] + self.args, stdout=self.out,
                                  stderr=self.err, env=self.env, cwd=self.dir)
        _procs.append((self.p, self.name))
        return self

    def stdout(self):
        return read(self.out_path, "rb").decode("utf-8", "replace") if self.out_path else ""

    def log(self):
        return read(self.err_path, "rb").decode("utf-8", "replace") if self.err_path else ""

    def all_logs(self):
        text = ""
        for i in range(1, self.n + 1):
            pth = os.path.join(self.dir, f"{self.name}.{i}.log")
            if os.path.exists(pth):
                text += read(pth, "rb").decode("utf-8", "replace")
        return text

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        self.p.send_signal(sig)

    def kill9(self):
        self.p.kill()
        self.p.wait()

    def wait(self, timeout=60):
        rc = self.p.wait(timeout)
        self.out.close()
        self.err.close()
        check_sanitizer(self.log(), self.name)
        return rc

    def stop(self, timeout=30):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait_log(self, pattern, timeout=20):
        rx = re.compile(pattern)
        try:
            return wait_until(lambda: rx.search(self.log()), timeout, what=f"log /{pattern}/")
        except AssertionError as e:
            # what the agent said instead, and whether it is still running: CI cannot rerun it
            state = "running" if self.alive() else f"exited {self.p.poll()}"
            raise AssertionError(f"{e}; {self.name} is {state}; its log ends:\n"
                                 + "\n".join(self.log().splitlines()[-15:])) from None

def mapped_libs(pid):
    """Real paths of the shared objects process pid has mapped."""
    libs = set()
    for line in read(f"/proc/{pid}/maps").splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and ".so" in os.path.basename(parts[5]):
            libs.add(os.path.realpath(parts[5]))
    return libs

def linked_libs(binary=None):
    """Real paths of what the dynamic linker maps for binary (ldd)."""
    p = subprocess.run(["ldd", binary or LOGSHIP], capture_output=True, text=True, timeout=30)
    return {os.path.realpath(m.group(1)) for m in re.finditer(r"(/\S+) \(0x", p.stdout)}

def tail_text(text, n=40):
    return "\n".join(text.splitlines()[-n:])
