"""Signals and reloads (issue 14, items 3, 4 and 6): the agent lives through any burst of
signals, a TERM during a reload stops it, and SIGHUP validates the new configuration while
the running pipeline keeps going.

The pipeline is the reliability suite's usual one: tail (pos_file) -> file buffer -> the
`fault` test output, which appends the delivered lines to a file (tests/lib/relkit.py).
- A storm of HUPs (100, 20 ms apart; LONG=1: 400) must neither kill the agent (the default
  action of a HUP that arrives while no handler is installed: exit 129) nor lose or duplicate
  a line.
- A TERM sent while a reload is draining the old pipeline, or at any instant just after a HUP,
  stops the agent gracefully (exit 0) instead of being lost or killing it.
- An invalid file on HUP leaves the running pipeline untouched: no stop, no drain, the open
  (staged) chunk stays open. A valid one is applied even though the running tail holds the
  same pos_file, and every line arrives exactly once.
"""
import glob, json, os, re, signal, time

import lstest
from lstest import Agent, conf, tmpdir, wait_until
import relkit


def _pos_offset(pos_file, path):
    """The offset fluentd's pos_file format records for path (its last line wins)."""
    off = None
    if os.path.exists(pos_file):
        for line in lstest.read(pos_file).splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] == path and parts[1] != "ffffffffffffffff":
                off = int(parts[1], 16)
    return off


def _wait_read(d, log, a):
    """Until the tail committed everything log holds (its pos_file says so)."""
    size = os.path.getsize(log)
    wait_until(lambda: _pos_offset(os.path.join(d, "tail.pos"), log) == size or not a.alive(),
               30, what=f"pos_file at {size}")
    assert a.alive(), lstest.tail_text(a.log())


def test_hup_storm_does_not_kill_the_agent():
    d = tmpdir()
    log = os.path.join(d, "app.log")
    lstest.write(log, "")
    a = Agent(relkit.tail_to_fault(d, log)).start()
    a.wait_log("logship started")
    keys = relkit.write_lines(log, "a", 0, 100)
    n = 400 if lstest.LONG else 100
    for i in range(n):
        a.signal(signal.SIGHUP)
        time.sleep(0.02)
        if i % 10 == 0:
            keys += relkit.write_lines(log, "a", len(keys), 20)
        assert a.alive(), f"died after {i + 1} HUPs, exit {a.p.returncode}: " + \
            lstest.tail_text(a.log(), 10)
    keys += relkit.write_lines(log, "a", len(keys), 100)
    relkit.wait_delivered(os.path.join(d, "delivered"), keys, a)
    assert a.stop() == 0, lstest.tail_text(a.log())
    relkit.check_exactly_once(relkit.delivered_lines(os.path.join(d, "delivered")), keys,
                              f"{n} HUPs")


def test_term_while_a_reload_drains_stops_the_agent():
    """The old pipeline waits for a write in flight (hang 1) before the new one starts; a TERM
    then must end the process, not be forgotten when the new pipeline starts."""
    d = tmpdir()
    log = os.path.join(d, "app.log")
    lstest.write(log, "")
    attempts = os.path.join(d, "attempts")
    c = relkit.tail_to_fault(d, log, fault=f"hang 2\n  attempts_path {attempts}")
    a = Agent(c).start()
    a.wait_log("logship started")
    relkit.write_lines(log, "a", 0, 50)
    wait_until(lambda: os.path.exists(attempts) and os.path.getsize(attempts) > 0,
               what="a write in flight")
    a.signal(signal.SIGHUP)
    a.wait_log("reloading the configuration")
    a.signal(signal.SIGTERM)
    rc = a.wait(30)
    log_text = a.log()
    assert rc == 0, f"exit {rc}: " + lstest.tail_text(log_text)
    assert log_text.count("logship started") == 1, lstest.tail_text(log_text)


def test_term_at_any_instant_after_a_hup_is_graceful():
    """A HUP then a TERM 0-100 ms later: wherever the reload is (validating, draining,
    between the two pipelines, starting the new one), the agent stops with exit 0."""
    d = tmpdir()
    log = os.path.join(d, "app.log")
    lstest.write(log, "")
    c = relkit.tail_to_fault(d, log)
    for delay in (0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1):
        a = Agent(c).start()
        a.wait_log("logship started")
        relkit.write_lines(log, f"d{delay}", 0, 10)
        a.signal(signal.SIGHUP)
        time.sleep(delay)
        a.signal(signal.SIGTERM)
        rc = a.wait(30)
        assert rc == 0, f"TERM {delay * 1000:.0f} ms after HUP: exit {rc}: " + \
            lstest.tail_text(a.log())


def _lazy_conf(d, log, tag_field):
    """tail -> filter adding {"v": tag_field} -> fault (JSON); one open chunk per day."""
    return relkit.tail_source(log, d) + f"""
<filter **>
  @type record_transformer
  <record>
    v {tag_field}
  </record>
</filter>
<match **>
  @type fault
  path {d}/delivered
  <format>
    @type json
  </format>
  <buffer time>
    @type file
    path {d}/buf
    timekey 1d
    timekey_wait 0
    flush_mode lazy
    retry_wait 0.3
  </buffer>
</match>"""


def _chunks(d):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "buf", "logship.*.chunk")))


def test_invalid_reload_leaves_the_running_pipeline_untouched():
    d = tmpdir()
    log = os.path.join(d, "app.log")
    lstest.write(log, "")
    c = conf(_lazy_conf(d, log, "one"), d)
    a = Agent(c).start()
    a.wait_log("logship started")
    relkit.write_lines(log, "a", 0, 20)
    _wait_read(d, log, a)
    staged = _chunks(d)
    assert len(staged) == 1 and staged[0].startswith("logship.b"), staged
    with open(c, "a") as f:
        f.write("<match\n")
    a.signal(signal.SIGHUP)
    a.wait_log("keeping the running one")
    relkit.write_lines(log, "a", 20, 20)
    _wait_read(d, log, a)       # the same pipeline still reads and commits
    text = a.log()
    assert "logship stopped" not in text and text.count("logship started") == 1, \
        lstest.tail_text(text)
    assert _chunks(d) == staged, (staged, _chunks(d))     # not sealed, not written
    assert not os.path.exists(os.path.join(d, "delivered"))
    assert a.stop() == 0


def test_valid_reload_with_a_pos_file_is_applied_exactly_once():
    d = tmpdir()
    log = os.path.join(d, "app.log")
    lstest.write(log, "")
    c = conf(_lazy_conf(d, log, "one").replace("flush_mode lazy", "flush_mode interval\n"
                                               "    flush_interval 0.3"), d)
    a = Agent(c).start()
    a.wait_log("logship started")
    keys = relkit.write_lines(log, "a", 0, 200)
    _wait_read(d, log, a)
    lstest.write(c, lstest.read(c).replace("v one", "v two"))
    a.signal(signal.SIGHUP)
    # lines written while the pipeline is handed over, then after it
    keys += relkit.write_lines(log, "a", len(keys), 200)
    a.wait_log("restarting the pipeline")
    keys += relkit.write_lines(log, "a", len(keys), 200)
    delivered = os.path.join(d, "delivered")

    def records():
        return [json.loads(l) for l in relkit.delivered_lines(delivered) if l.strip()]
    try:
        wait_until(lambda: {" ".join(r["message"].split()[:2]) for r in records()} >= set(keys),
                   30, 0.2, what="every line delivered")
    except AssertionError:
        raise AssertionError(lstest.tail_text(a.log(), 20))
    assert a.stop() == 0
    recs = records()
    relkit.check_exactly_once([r["message"] for r in recs], keys, "reload")
    assert recs[-1]["v"] == "two", recs[-1]
    assert not re.search(r"already used by another tail", a.log()), a.log()


def test_two_sources_of_one_configuration_still_cannot_share_a_pos_file():
    """The pos_file check is per pipeline now (a reload's validation must not trip on the
    running one); within one configuration it still holds."""
    d = tmpdir()
    log = os.path.join(d, "app.log")
    lstest.write(log, "")
    c = conf(relkit.tail_source(log, d) + relkit.tail_source(log + "2", d, tag="u") +
             "\n<match **>\n  @type null\n</match>\n", d)
    p = lstest.run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and re.search(r"logship\.conf:\d+: pos_file .* is already used by "
                                           r"another tail source", p.stderr), p.stderr


def test_term_during_a_big_pos_file_load_exits_promptly_and_keeps_it():
    """Issue 14 item 6: a pos_file of 200,000 entries for files gone from a directory of 1,000
    (each is looked for by inode there at start). A TERM that comes meanwhile ends the process
    gracefully and promptly (it used to wait for a quadratic load, minutes), and the entries not
    yet looked at are kept: the start must not compact them away."""
    d = tmpdir()
    old = os.path.join(d, "old")
    os.makedirs(old)
    for i in range(1000):
        open(os.path.join(old, f"other{i}"), "w").close()
    log = os.path.join(d, "app.log")
    lstest.write(log, "x\n")
    n = 200000
    pos = os.path.join(d, "tail.pos")
    with open(pos, "w") as f:
        f.write("".join(f"{old}/app.log.{i}\t{i:016x}\t{i + 10**9:016x}\n" for i in range(n)))
    c = conf(relkit.tail_source(log, d) + "\n<match **>\n  @type null\n</match>\n", d)
    a = Agent(c).start()

    def term_handled():
        # from here on a TERM is the agent's to handle, blocked (read from a signalfd) or
        # caught; before, it would take its default action
        bit = 1 << (signal.SIGTERM - 1)
        try:
            return any(int(line.split()[1], 16) & bit
                       for line in lstest.read(f"/proc/{a.p.pid}/status").splitlines()
                       if line.startswith(("SigBlk:", "SigCgt:")))
        except OSError:
            return False
    wait_until(term_handled, 10, 0.001, what="TERM blocked or caught")
    a.signal(signal.SIGTERM)
    t0 = time.time()
    rc = a.wait(60)
    assert rc == 0, f"exit {rc}: " + lstest.tail_text(a.log())
    assert "logship started" not in a.log(), lstest.tail_text(a.log())
    kept = sum(1 for line in lstest.read(pos).splitlines() if line.startswith(old))
    assert kept == n, f"{n - kept} pos_file entries lost"
    print(f"    TERM honoured {time.time() - t0:.2f}s after it was sent", flush=True)
