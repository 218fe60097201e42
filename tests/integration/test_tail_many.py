"""in_tail over many files: one inotify instance with a persistent watch per file (agent/notify.c).

The watch timer is off (enable_watch_timer false), so lines written after the start reach the
output only through the path watchers: inotify, or the stat polling that replaces it past the
watch limit (LOGSHIP_INOTIFY_MAX_WATCHES, for tests). Every line of every file must arrive
exactly once, through new files, rotations (rename + create, delete + create) and appends.
Timings are not asserted here; the CPU figures are the benchmark's (tests/bench, many-files).
"""
import collections, glob, json, os, sys
from lstest import Agent, conf, tmpdir, wait_until

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_tail import file_match  # noqa: E402  (the file output with a file buffer)


def config(d, extra=""):
    return f"""
<source>
  @type tail
  path {d}/logs/*.log
  pos_file {d}/tail.pos
  tag many
  read_from_head true
  refresh_interval 1
  rotate_wait 1
  enable_watch_timer false
{extra}
  <parse>
    @type none
  </parse>
</source>
""" + file_match(d)


def delivered(d):
    got = collections.Counter()
    for p in glob.glob(os.path.join(d, "out", "o*.log")):
        with open(p, "rb") as f:
            for line in f.read().decode().splitlines():
                if line.strip():
                    got[json.loads(line)["message"]] += 1
    return got


class Writer:
    def __init__(self, d, n):
        self.dir = os.path.join(d, "logs")
        os.makedirs(self.dir, exist_ok=True)
        self.n = n
        self.want = set()
        self.seq = collections.Counter()

    def path(self, i):
        return os.path.join(self.dir, f"f{i:05d}.log")

    def append(self, files, lines=1):
        for i in files:
            with open(self.path(i), "a") as f:
                for _ in range(lines):
                    msg = f"file {i} line {self.seq[i]} " + "x" * (i % 50)
                    self.seq[i] += 1
                    self.want.add(msg)
                    f.write(msg + "\n")


def wait_all(d, w, timeout=60):
    def done():
        return len(delivered(d)) >= len(w.want)
    wait_until(done, timeout, interval=0.3, what=f"{len(w.want)} distinct lines delivered")
    got = delivered(d)
    assert set(got) == w.want, (sorted(set(got) ^ w.want)[:10])
    dup = {k: v for k, v in got.items() if v != 1}
    assert not dup, list(dup.items())[:10]


def test_many_files_every_line_once_through_rotation_and_new_files():
    d = tmpdir()
    w = Writer(d, 500)
    w.append(range(500))
    a = Agent(conf(config(d), d)).start()
    try:
        wait_all(d, w)
        # appends after the start: only inotify tells (the timer is off)
        for _ in range(3):
            w.append(range(0, 500, 3), lines=2)
            w.append(range(1, 500, 7))
        wait_all(d, w)
        # new files matched by the glob, then written again
        w.append(range(500, 600))
        wait_all(d, w)
        w.append(range(500, 600, 2))
        # rename + create for 100 files, delete + create for 50, with lines in between
        for i in range(100):
            os.rename(w.path(i), w.path(i) + ".1")
        w.append(range(100), lines=2)
        for i in range(100, 150):
            os.unlink(w.path(i))
        w.append(range(100, 150))
        wait_all(d, w)
        w.append(range(0, 150, 5), lines=3)
        w.append(range(200, 600, 11))
        wait_all(d, w)
    finally:
        a.stop()
    assert "inotify watch limit" not in a.log()


def test_watch_limit_falls_back_to_polling_for_the_rest():
    d = tmpdir()
    w = Writer(d, 120)
    w.append(range(120))
    a = Agent(conf(config(d), d), env={"LOGSHIP_INOTIFY_MAX_WATCHES": "30"}).start()
    try:
        wait_all(d, w)
        assert a.log().count("inotify watch limit reached") == 1, a.log()
        for _ in range(2):
            w.append(range(120), lines=2)
            wait_all(d, w)
        # a rotated file frees its watch; its successor and the rest keep being followed
        for i in range(0, 120, 10):
            os.rename(w.path(i), w.path(i) + ".1")
        w.append(range(120))
        wait_all(d, w)
    finally:
        a.stop()
    assert a.log().count("inotify watch limit reached") == 1


def test_without_inotify_every_file_is_polled():
    d = tmpdir()
    w = Writer(d, 40)
    w.append(range(40))
    a = Agent(conf(config(d), d), env={"LOGSHIP_INOTIFY_MAX_WATCHES": "0"}).start()
    try:
        wait_all(d, w)
        w.append(range(40), lines=3)
        os.rename(w.path(3), w.path(3) + ".1")
        w.append([3])
        wait_all(d, w)
    finally:
        a.stop()


def test_ten_thousand_files_then_appends_to_some():
    d = tmpdir()
    n = 10000
    w = Writer(d, n)
    w.append(range(n))
    a = Agent(conf(config(d), d)).start()
    try:
        wait_all(d, w, timeout=180)
        w.append(range(0, n, 97), lines=2)
        w.append(range(5, n, 333))
        wait_all(d, w, timeout=60)
    finally:
        a.stop()
    assert "watch limit" not in a.log() and "too many open files" not in a.log().lower()
