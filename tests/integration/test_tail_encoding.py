"""in_tail's `encoding` / `from_encoding`, end to end.

Japanese sites' td-agent.conf carry `from_encoding Shift_JIS` (or CP932,
EUC-JP) + `encoding UTF-8`: every line is converted before it is parsed, so
the delivered JSON holds the right UTF-8 text. The expected text comes from
Python's own codecs, not from logship. `encoding` alone only names the
bytes: they pass unchanged. Bad names and `from_encoding` without
`encoding` are configuration errors naming file:line (fluentd refuses them
too). Invalid bytes become U+FFFD and the agent keeps going.
"""
import glob, json, os, re, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write


def file_match(d):
    return f"""
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
    flush_at_shutdown true
  </buffer>
</match>"""


def out_bytes(d):
    return b"".join(lstest.read(f, "rb") for f in sorted(glob.glob(os.path.join(d, "out", "o*.log"))))


def delivered(d):
    """Every output line must be valid UTF-8 JSON."""
    return [json.loads(line) for line in out_bytes(d).decode("utf-8").splitlines() if line.strip()]


def wait_delivered(d, n, timeout=30):
    wait_until(lambda: len(delivered(d)) >= n, timeout, what=f"{n} records delivered")
    time.sleep(0.8)    # a duplicate would show up now
    return delivered(d)


def pos_of(pos_file, path):
    """The offset fluentd's pos_file holds for path (the last entry wins)."""
    pos = None
    for line in lstest.read(pos_file, "rb").decode("utf-8", "replace").splitlines():
        m = re.match(r"^([^\t]+)\t([0-9a-fA-F]+)\t([0-9a-fA-F]+)", line)
        if m and m.group(1) == path:
            pos = int(m.group(2), 16)
    return pos


def source(path, d, extra, parse="@type none"):
    return f"""
<source>
  @type tail
  path {path}
  pos_file {d}/tail.pos
  tag enc
  read_from_head true
  refresh_interval 1
{extra}
  <parse>
    {parse}
  </parse>
</source>"""


LINES = ["ログ出力テスト", r"C:\logs\app~1.log を開きました", "ｶﾀｶﾅ半角", "表示・ソ・能", "plain ascii"]


def test_shift_jis_to_utf8_none_parser():
    d = tmpdir()
    log = os.path.join(d, "sjis.log")
    # 表/ソ/能 have '\' (0x5C) as their second byte; '\' and '~' stay ASCII as in Ruby
    write(log, b"".join(s.encode("shift_jis") + b"\r\n" for s in LINES), "wb")
    a = Agent(conf(source(log, d, "  from_encoding Shift_JIS\n  encoding UTF-8") + file_match(d),
                   d)).start()
    recs = wait_delivered(d, len(LINES))
    log_text = a.log()
    a.stop()
    assert [r["message"] for r in recs] == LINES, recs
    assert "ignored" not in log_text and "replaced" not in log_text, lstest.tail_text(log_text)
    # positions are byte offsets in the source file, as before conversion
    assert pos_of(f"{d}/tail.pos", log) == os.path.getsize(log)


def test_cp932_and_eucjp_through_ltsv():
    for enc, pyenc, extra_line in (("CP932", "cp932", "①ＮＥＣ～"), ("EUC-JP", "euc_jp", "旧字体")):
        d = tmpdir()
        log = os.path.join(d, "l.log")
        rows = [{"host": "web01", "msg": m} for m in LINES + [extra_line]]
        text = "".join(f"host:{r['host']}\tmsg:{r['msg']}\n" for r in rows)
        write(log, text.encode(pyenc), "wb")
        a = Agent(conf(source(log, d, f"  from_encoding {enc}\n  encoding UTF-8",
                              parse="@type ltsv") + file_match(d), d)).start()
        recs = wait_delivered(d, len(rows))
        a.stop()
        assert recs == rows, (enc, recs)


def test_encoding_alone_passes_bytes_unchanged():
    d = tmpdir()
    log = os.path.join(d, "u.log")
    write(log, "日本語 ok\n".encode() + "ログ".encode("shift_jis") + b"\n", "wb")
    a = Agent(conf(source(log, d, "  encoding UTF-8") + file_match(d), d)).start()
    wait_delivered(d, 2)
    a.stop()
    msgs = [r["message"] for r in delivered(d)]
    # the UTF-8 line as it was; the Shift_JIS bytes were not converted (the formatter escapes them)
    assert msgs[0] == "日本語 ok", msgs
    assert "ログ" not in msgs[1] and msgs[1] != "", msgs


def config_error(extra, d):
    log = os.path.join(d, "x.log")
    write(log, "x\n")
    c = conf(source(log, d, extra) + file_match(d), d)
    p = run(["-c", c, "--dry-run"], timeout=30)
    return c, p


def line_of(path, needle):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise AssertionError(needle)


def test_bad_encoding_names_are_errors_with_file_line():
    for extra, key, needle in (
            ("  from_encoding Shift_JIS\n  encoding UTF-8X", "  encoding UTF-8X", "UTF-8X"),
            ("  from_encoding NO-SUCH-CODE\n  encoding UTF-8", "from_encoding", "NO-SUCH-CODE"),
            ("  from_encoding UTF-16LE\n  encoding UTF-8", "from_encoding", "UTF-16")):
        d = tmpdir()
        c, p = config_error(extra, d)
        assert p.returncode != 0, (extra, p.stderr)
        want = f"{os.path.basename(c)}:{line_of(c, key)}:"
        assert want in p.stderr and needle in p.stderr, (extra, want, p.stderr)


def test_from_encoding_without_encoding_is_an_error():
    d = tmpdir()
    c, p = config_error("  from_encoding Shift_JIS", d)
    assert p.returncode != 0, p.stderr
    assert f":{line_of(c, 'from_encoding')}:" in p.stderr, p.stderr
    assert "'from_encoding' parameter must be specified with 'encoding' parameter" in p.stderr, \
        p.stderr


def test_same_encoding_warns_no_effect():
    d = tmpdir()
    c, p = config_error("  from_encoding CP932\n  encoding Windows-31J", d)
    assert p.returncode == 0, p.stderr
    assert "same encoding. No effect" in p.stderr, p.stderr


def test_invalid_sjis_bytes_become_fffd_and_agent_keeps_running():
    d = tmpdir()
    log = os.path.join(d, "bad.log")
    write(log, b"ok " + "前".encode("shift_jis") + b"\n" +
          b"bad \xff\xfd end\n" +            # two bytes no Shift_JIS uses
          b"half \x83\n" +                  # a first byte cut off by the line end
          b"lead \x81 space\n", "wb")       # a first byte followed by an invalid second byte
    a = Agent(conf(source(log, d, "  from_encoding Shift_JIS\n  encoding UTF-8") +
                   file_match(d), d)).start()
    recs = wait_delivered(d, 4)
    assert [r["message"] for r in recs] == ["ok 前", "bad \ufffd\ufffd end", "half \ufffd",
                                            "lead \ufffd space"], recs
    # still following: a good line appended later is converted too
    with open(log, "ab") as f:
        f.write("後で".encode("shift_jis") + b"\n")
    recs = wait_delivered(d, 5)
    assert a.alive()
    log_text = a.log()
    a.stop()
    assert recs[-1]["message"] == "後で", recs
    assert re.search(r"not valid Shift_JIS .*replaced with U\+FFFD", log_text), \
        lstest.tail_text(log_text)
