#!/usr/bin/env python3
"""The one test runner: unit binaries (Check) and integration files.

Unit tests: every build/unit/test_* binary (libcheck; its "Checks: N,
Failures: F, Errors: E" line is counted). Integration tests: every
tests/integration/test_*.py, each run in its own process by tests/lib/pyrun.py,
which runs its test_* functions and reports PASS/FAIL/SKIP per function.

Usage: tests/run.py [PATTERN]   (only tests whose file or function name contains PATTERN)
Ends with the line "N passed, N failed, N skipped"; exit 1 if anything failed.
"""
import os, re, subprocess, sys, time, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT_DIR = os.environ.get("UNIT_DIR", os.path.join(ROOT, "build", "unit"))
PATTERN = sys.argv[1] if len(sys.argv) > 1 else ""
FILE_TIMEOUT = int(os.environ.get("TEST_FILE_TIMEOUT", "900"))

passed = failed = skipped = 0
failures = []

def run_unit(path):
    global passed, failed
    name = os.path.basename(path)
    t0 = time.time()
    env = dict(os.environ, CK_DEFAULT_TIMEOUT="60")
    p = subprocess.run([path], cwd=ROOT, capture_output=True, text=True, env=env, timeout=FILE_TIMEOUT)
    out = p.stdout + p.stderr
    m = re.search(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", out)
    if m:
        n, f, e = map(int, m.groups())
        passed += n - f - e
        failed += f + e
        bad = f + e > 0 or p.returncode != 0
    else:
        failed += 1
        bad = True
    status = "FAIL" if bad else "ok"
    print(f"[unit] {name}: {status} ({time.time()-t0:.1f}s)" + (f" {m.group(0)}" if m else ""), flush=True)
    if bad:
        failures.append(name)
        for line in out.splitlines():
            if re.search(r":[EF]:|Failures|Error|ERROR|runtime error|Sanitizer", line):
                print("    " + line)

def run_py(path):
    global passed, failed, skipped
    name = os.path.basename(path)
    t0 = time.time()
    cmd = [sys.executable, os.path.join(ROOT, "tests", "lib", "pyrun.py"), path]
    if PATTERN and PATTERN not in name:
        cmd.append(PATTERN)
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=FILE_TIMEOUT)
        out = p.stdout
        err = p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = f"timeout after {FILE_TIMEOUT}s"
        p = None
    n_pass = n_fail = n_skip = 0
    for line in out.splitlines():
        if line.startswith("PASS "):
            n_pass += 1
            print(f"  ok   {line[5:]}", flush=True)
        elif line.startswith("FAIL "):
            n_fail += 1
            failures.append(f"{name}:{line[5:].split(':')[0]}")
            print(f"  FAIL {line[5:]}", flush=True)
        elif line.startswith("SKIP "):
            n_skip += 1
            print(f"  skip {line[5:]}", flush=True)
        elif line.startswith("  "):
            print(line, flush=True)
    if p is None or (p.returncode != 0 and n_fail == 0):
        n_fail += 1
        failures.append(name)
        print(f"  FAIL {name}: runner exited {p.returncode if p else 'timeout'}\n" + "\n".join("    " + l for l in err.splitlines()[-30:]), flush=True)
    passed += n_pass
    failed += n_fail
    skipped += n_skip
    print(f"[integration] {name}: {n_pass} passed, {n_fail} failed ({time.time()-t0:.1f}s)", flush=True)

def main():
    units = sorted(glob.glob(os.path.join(UNIT_DIR, "test_*")))
    units = [u for u in units if os.access(u, os.X_OK) and not u.endswith(".d")]
    for u in units:
        if PATTERN and PATTERN not in os.path.basename(u):
            continue
        run_unit(u)
    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))):
        if PATTERN and PATTERN not in os.path.basename(f):
            # a pattern may also name a function inside the file
            with open(f) as fh:
                if PATTERN not in fh.read():
                    continue
        run_py(f)
    if failures:
        print("failed: " + ", ".join(failures))
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed or (passed == 0) else 0)

if __name__ == "__main__":
    main()
