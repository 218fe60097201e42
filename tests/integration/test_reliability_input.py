"""Bad input: binary garbage, a 100 MB line, invalid UTF-8 and NULs in a tailed log.

logship tails a file holding all of these between numbered good lines (nginx parser, and
`none` for everything), into out_file as JSON. It must keep running, every output line must
be valid UTF-8 and valid JSON, every good line must arrive exactly once, and the over-long
line must be skipped and counted (monitor_agent's dropped_records / the log's warning).
"""
import glob, json, os, random, time

import lstest
from lstest import Agent, conf, tmpdir, wait_until
import relkit


def _out_lines(d):
    lines = []
    for f in glob.glob(os.path.join(d, "out", "o*.log")):
        with open(f, "rb") as fh:
            lines += fh.read().split(b"\n")
    return [l for l in lines if l]


def test_garbage_huge_line_invalid_utf8_and_nuls():
    d = tmpdir()
    inp = os.path.join(d, "in.log")
    rnd = random.Random(7)
    good = []
    with open(inp, "wb") as f:
        for i in range(200):
            k = f"good {i}"
            good.append(k)
            f.write(f"{k} ok\n".encode())
            r = i % 5
            if r == 0:
                f.write(bytes(rnd.randrange(256) for _ in range(300)).replace(b"\n", b"") + b"\n")
            elif r == 1:
                f.write(b"bad utf8 \xff\xfe\xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 end\n")
            elif r == 2:
                f.write(b"nul \x00 inside \x00\x00 line\n")
            elif r == 3:
                f.write(b"\x1b[31mcontrol\x07\x08 chars\r\n")
        # one 100 MB line in the middle, then more good lines
        chunk = b"y" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write(b"\n")
        for i in range(200, 400):
            k = f"good {i}"
            good.append(k)
            f.write(f"{k} ok\n".encode())
    port = lstest.free_port()
    c = conf(f"""
<source>
  @type monitor_agent
  port {port}
</source>
<source>
  @type tail
  @id in_t
  path {inp}
  pos_file {d}/tail.pos
  tag t
  read_from_head true
  <parse>
    @type none
  </parse>
</source>
<match **>
  @type file
  path {d}/out/o
  <format>
    @type json
  </format>
  <buffer []>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3
  </buffer>
</match>""", d)
    a = Agent(c).start()

    def got_keys():
        out = []
        for l in _out_lines(d):
            m = json.loads(l.decode("utf-8"))["message"]
            if m.startswith("good "):
                out.append(" ".join(m.split()[:2]))
        return out
    wait_until(lambda: set(good) <= set(got_keys()), 120, 0.5, what="all good lines")
    time.sleep(0.8)
    assert a.alive(), lstest.tail_text(a.log(), 30)
    st, body = relkit.http_get(port, "/api/plugins.json")
    assert st == 200, body
    plugins = {p.get("plugin_id"): p for p in json.loads(body)["plugins"]}
    a.stop()
    lines = _out_lines(d)
    for l in lines:
        text = l.decode("utf-8")          # raises on invalid UTF-8
        rec = json.loads(text)            # raises on invalid JSON
        assert len(l) < (2 << 20), "the over-long line was not skipped"
    relkit.check_exactly_once([k + " ok" for k in got_keys()], good, "bad input")
    assert "longer than max_line_size" in a.log(), lstest.tail_text(a.log(), 20)
    dropped = plugins["in_t"].get("dropped_records")
    assert dropped == 1, f"dropped_records {dropped}: {plugins['in_t']}"
    # NULs and invalid UTF-8 lines are delivered (replaced / escaped), not lost
    msgs = [json.loads(l)["message"] for l in lines]
    assert sum(1 for m in msgs if m.startswith("nul ")) == 40, "NUL lines lost"
    assert sum(1 for m in msgs if m.startswith("bad utf8")) == 40, "invalid UTF-8 lines lost"
