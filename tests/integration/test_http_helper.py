"""logship-http, the helper process that runs the agent's HTTP requests (agent/http.h).

logship does not link libcurl, so an idle agent does not carry its 6 MB of mapped
libraries: out_s3's requests go over a socketpair to logship-http, which the agent starts
on demand and closes after LOGSHIP_HTTP_IDLE seconds without requests. These tests check
what that must not cost: nothing lost when the helper is killed mid-upload, a helper
that exits when idle and comes back for the next chunk, no helper outliving a killed
agent, a clear error when the helper is missing, and no libcurl in the agent itself.
"""
import os, signal, subprocess, sys, time
import lstest
from lstest import Agent, run, tmpdir, wait_until
from faultproxy import FaultProxy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_s3 as base  # noqa: E402
import test_s3_faults as faults  # noqa: E402
from s3server import S3Server  # noqa: E402


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            out += [int(c) for c in lstest.read(f"/proc/{pid}/task/{t}/children").split()]
    except OSError:
        pass
    return out


def helpers(pid):
    def is_helper(c):
        try:
            return os.path.basename(os.readlink(f"/proc/{c}/exe")) == "logship-http"
        except OSError:
            return False
    return [c for c in children(pid) if is_helper(c)]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def start_agent(srv, d, endpoint, lines, flush="0.2s", env=None, args=()):
    """An agent tailing `lines` JSON records into S3 via endpoint, flushing every `flush`."""
    c = faults.tail_conf(srv, d, endpoint, lines, buffer_body="    flush_mode interval\n    flush_interval " + flush)
    return Agent(c, env=env or base.s3env(srv), args=list(args)).start()


def append_records(d, first, last):
    with open(os.path.join(d, "app.log"), "a") as f:
        f.write("".join(f'{{"seq": {i}, "msg": "record {i}"}}\n' for i in range(first, last)))


def test_agent_does_not_map_libcurl_or_tls_libraries():
    srv = S3Server.start()
    d = tmpdir()
    a = start_agent(srv, d, srv.endpoint, 5)
    wait_until(lambda: len(srv.list_objects("logs/")) == 1, 30, what="the upload")
    # the upload ran in a helper; the agent itself never mapped libcurl or a TLS library
    mapped = "\n".join(sorted(lstest.mapped_libs(a.p.pid)))
    for lib in ("libcurl", "libssl", "libgnutls", "libnghttp2", "libkrb5", "libldap"):
        assert lib not in mapped, (lib, mapped)
    hs = helpers(a.p.pid)
    assert hs, "no logship-http child after an upload"
    assert any("libcurl" in x for x in lstest.mapped_libs(hs[0]))
    assert a.stop() == 0
    faults.check_exactly_once(srv, 5, 1)


def test_helper_killed_mid_upload_nothing_lost():
    """kill -9 of logship-http while PUTs hang: the agent reports it, retries, and every record
    arrives exactly once."""
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("pass", method="PUT", times=2)
    px.add("stall", method="PUT", times=None, seconds=120)
    d = tmpdir()
    a = start_agent(srv, d, px.endpoint, 40, flush="0.5s")
    wait_until(lambda: any(e["action"] == "stall" for e in px.log), 30, what="a stalled PUT")
    hs = helpers(a.p.pid)
    assert len(hs) == 1, hs
    px.clear()
    os.kill(hs[0], signal.SIGKILL)
    # first what the agent sees (its socket closed, the PUTs fail over to a retry), then,
    # once the helper is reaped, how it ended
    a.wait_log(r"logship-http \(pid %d\)(: Connection reset by peer| closed its socket); its requests will be retried" % hs[0])
    a.wait_log(r"(?m)logship-http \(pid %d\) was killed by signal 9$" % hs[0])
    wait_until(lambda: len(srv.list_objects("logs/")) == 8, 60, what="every chunk uploaded")
    new = helpers(a.p.pid)
    assert new and hs[0] not in new, (hs, new)
    assert not alive(hs[0])          # reaped, not a zombie
    assert a.stop() == 0
    faults.check_exactly_once(srv, 40, 8)


def test_helper_exits_when_idle_and_comes_back_for_the_next_chunk():
    srv = S3Server.start()
    d = tmpdir()
    a = start_agent(srv, d, srv.endpoint, 5, env=dict(base.s3env(srv), LOGSHIP_HTTP_IDLE="1"), args=["-v"])
    wait_until(lambda: len(srv.list_objects("logs/")) == 1, 30, what="the first upload")
    first = helpers(a.p.pid)
    wait_until(lambda: not helpers(a.p.pid), 20, what="logship-http to exit when idle")
    for pid in first:
        wait_until(lambda: not alive(pid), 10, what="the idle helper to be reaped")
    a.wait_log(r"idle for 1s, stopping logship-http")
    # more lines: a new helper uploads them
    append_records(d, 5, 10)
    wait_until(lambda: len(srv.list_objects("logs/")) == 2, 30, what="the second upload")
    assert a.log().count("started logship-http") >= 2, a.log()[-3000:]
    assert a.stop() == 0
    faults.check_exactly_once(srv, 10, 2)


def test_helper_does_not_outlive_a_killed_agent():
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("stall", method="PUT", times=None, seconds=120)
    d = tmpdir()
    a = start_agent(srv, d, px.endpoint, 5)
    wait_until(lambda: any(e["action"] == "stall" for e in px.log), 30, what="a stalled PUT")
    hs = helpers(a.p.pid)
    assert hs
    a.kill9()
    # the helper sees end of file on its socket and exits, even with a transfer in flight
    wait_until(lambda: not any(os.path.exists(f"/proc/{h}") and alive(h) for h in hs), 10,
               what="logship-http to exit after the agent was killed")


def test_helper_ignores_sigterm_so_the_agent_can_flush_on_the_way_out():
    """systemd signals the whole cgroup: the helper must keep working while the agent flushes."""
    srv = S3Server.start()
    d = tmpdir()
    a = start_agent(srv, d, srv.endpoint, 5)
    wait_until(lambda: len(srv.list_objects("logs/")) == 1, 30, what="the first upload")
    hs = helpers(a.p.pid)
    assert hs
    os.kill(hs[0], signal.SIGTERM)
    time.sleep(0.3)
    assert alive(hs[0])
    append_records(d, 5, 10)
    wait_until(lambda: len(srv.list_objects("logs/")) == 2, 30, what="the second upload")
    assert hs[0] in helpers(a.p.pid)     # the same helper did it
    assert a.stop() == 0
    faults.check_exactly_once(srv, 10, 2)


def test_missing_helper_is_a_clear_config_error():
    srv = S3Server.start()
    d = tmpdir()
    c = faults.tail_conf(srv, d, srv.endpoint, 1)
    env = dict(base.s3env(srv), LOGSHIP_HTTP_HELPER=os.path.join(d, "no-such-helper"))
    p = run(["-c", c, "--dry-run"], env=env)
    assert p.returncode != 0
    assert "logship.conf:" in p.stderr and "LOGSHIP_HTTP_HELPER=" in p.stderr and "no-such-helper" in p.stderr, p.stderr


def test_helper_refuses_to_run_by_hand():
    p = subprocess.run([lstest.LOGSHIP + "-http"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "started by logship" in p.stderr, (p.returncode, p.stderr)


def test_stalled_helper_is_logged_while_it_stalls():
    """logship-http stopped (SIGSTOP) with an upload waiting: the agent says so while it
    lasts (a ping goes unanswered), not only when something times out, and again when it
    answers; then the records arrive exactly once."""
    srv = S3Server.start()
    d = tmpdir()
    a = start_agent(srv, d, srv.endpoint, 5, flush="0.3s")
    wait_until(lambda: len(srv.list_objects("logs/")) == 1, 30, what="the first upload")
    hs = helpers(a.p.pid)
    assert len(hs) == 1, hs
    os.kill(hs[0], signal.SIGSTOP)
    try:
        append_records(d, 5, 10)
        a.wait_log(r"logship-http \(pid %d\) has answered nothing for \d+s, not even a ping; "
                   r"[1-9]\d* requests wait for it" % hs[0], timeout=30)
    finally:
        os.kill(hs[0], signal.SIGCONT)
    a.wait_log(r"logship-http \(pid %d\) answers again after \d+s" % hs[0], timeout=20)
    wait_until(lambda: len(srv.list_objects("logs/")) == 2, 30, what="the second upload")
    assert a.stop() == 0
    faults.check_exactly_once(srv, 10, 2)
