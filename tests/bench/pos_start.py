#!/usr/bin/env python3
"""Start-up time with a big pos_file: seconds from exec to "logship started" for a tail
source whose pos_file holds N entries of files that are gone (each is still looked for, by
inode, at start, in their directory, which holds DIR_FILES other files, default 0: it does
not exist). Usage: LOGSHIP=build/logship [DIR_FILES=K] tests/bench/pos_start.py [N...]
(default 20000 50000 200000). Results: tests/bench/RESULTS.md, "pos_file at start"."""
import os, subprocess, sys, tempfile, time

LOGSHIP = os.environ.get("LOGSHIP", os.path.join(os.path.dirname(__file__), "..", "..",
                                                 "build", "logship"))


DIR_FILES = int(os.environ.get("DIR_FILES", "0"))


def measure(n):
    with tempfile.TemporaryDirectory(prefix="ls-posbench-") as d:
        if DIR_FILES:
            os.makedirs(f"{d}/old")
            for i in range(DIR_FILES):
                open(f"{d}/old/other{i}", "w").close()
        with open(f"{d}/app.log", "w") as f:
            f.write("hello\n")
        with open(f"{d}/tail.pos", "w") as f:
            f.write("".join(f"{d}/old/app{i}.log\t{i:016x}\t{i + 10**6:016x}\n"
                            for i in range(n)))
        with open(f"{d}/c.conf", "w") as f:
            f.write(f"<source>\n  @type tail\n  path {d}/app.log\n  pos_file {d}/tail.pos\n"
                    f"  tag t\n  <parse>\n    @type none\n  </parse>\n</source>\n"
                    f"<match **>\n  @type null\n</match>\n")
        p = subprocess.Popen([LOGSHIP, "-c", f"{d}/c.conf"], stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        took = None
        for line in p.stderr:
            if "logship started" in line:
                took = time.time() - t0
                break
        p.terminate()
        p.wait()
        return took


for n in [int(a) for a in sys.argv[1:]] or [20000, 50000, 200000]:
    t = measure(n)
    print(f"{n:>8} entries: started after {t:.2f} s" if t is not None else f"{n}: no start")
