"""out_file and secondary_file: fluentd's file names, append, gzip, zstd, placeholders,
path-traversal refusal, symlink_path, and idempotent retries (a chunk retried
after a crash rewrites the same file, an append is cut back before it is redone).

Event times are set from a record field (record_transformer renew_time_key),
so the slices are fixed dates and the expected names are exact.
"""
import glob, gzip, json, os, re, signal, subprocess, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

# 2024-01-01 00:30:00 UTC and the following hours
T0 = 1704069000
# 2030-01-01 00:00:00 UTC: a slice that is not due, so its chunk stays staged
TF = 1893456000

def sample_conf(d, times, out_block, tag="app.web", extra_records=None, count=None):
    recs = []
    for i, t in enumerate(times):
        r = {"t": t, "seq": i}
        if extra_records:
            r.update(extra_records[i])
        recs.append(r)
    n = count if count is not None else len(recs)
    return conf(f"""
<source>
  @type sample
  tag {tag}
  sample {json.dumps(recs)}
  count {n}
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>
{out_block}
""", d)

def oneshot(path, timeout=60):
    p = run(["-c", path, "--oneshot"], timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return p

def seqs_in(text):
    return [json.loads(l.split("\t")[2])["seq"] for l in text.splitlines() if l.strip()]

def test_default_name_is_path_dot_day_index_log():
    d = tmpdir()
    out = os.path.join(d, "out", "app")
    c = sample_conf(d, [T0, T0 + 60, T0 + 120], f"""
<match **>
  @type file
  path {out}
  <buffer>
    timekey_use_utc true
  </buffer>
</match>""")
    oneshot(c)
    files = sorted(glob.glob(out + ".*"))
    assert files == [out + ".20240101_0.log"], files
    text = lstest.read(files[0])
    assert seqs_in(text) == [0, 1, 2]
    # out_file formatter: time TAB tag TAB json
    assert re.match(r"2024-01-01T00:30:00(\+00:00|Z)\tapp\.web\t\{", text), text[:200]
    # the file buffer lived in the directory named by path (fluentd's default)
    assert os.path.isdir(out) and not glob.glob(os.path.join(out, "logship.*.chunk"))

def test_one_file_per_chunk_gets_the_next_index():
    d = tmpdir()
    out = os.path.join(d, "o")
    c = sample_conf(d, [T0 + i for i in range(10)], f"""
<match **>
  @type file
  path {out}
  <buffer time>
    timekey_use_utc true
    chunk_limit_records 4
  </buffer>
</match>""")
    oneshot(c)
    files = sorted(glob.glob(out + ".*"))
    assert files == [out + f".20240101_{i}.log" for i in range(3)], files
    allseq = sorted(s for f in files for s in seqs_in(lstest.read(f)))
    assert allseq == list(range(10))
    # a second run does not overwrite: it takes the next free indexes
    oneshot(c)
    files = sorted(glob.glob(out + ".*"))
    assert len(files) == 6 and out + ".20240101_5.log" in files, files

def test_append_and_gzip():
    d = tmpdir()
    out = os.path.join(d, "o")
    c = sample_conf(d, [T0 + i for i in range(10)], f"""
<match **>
  @type file
  path {out}
  append true
  compress gzip
  <buffer time>
    timekey_use_utc true
    chunk_limit_records 3
  </buffer>
</match>""")
    oneshot(c)
    files = sorted(glob.glob(out + ".*"))
    assert files == [out + ".20240101.log.gz"], files
    # several gzip members appended: gzip -t and zcat accept the file
    assert subprocess.run(["gzip", "-t", files[0]]).returncode == 0
    with gzip.open(files[0], "rt") as f:
        assert sorted(seqs_in(f.read())) == list(range(10))
    oneshot(c)
    with gzip.open(files[0], "rt") as f:
        assert sorted(seqs_in(f.read())) == sorted(list(range(10)) * 2)

def test_zstd_one_file_per_chunk_and_append():
    """compress zstd (fluentd 1.19): ".zstd" as fluentd names it; each file, and a file
    that appends made of several frames, decompress with the real zstd tool."""
    d = tmpdir()
    out = os.path.join(d, "o")
    out2 = os.path.join(d, "a")
    c = sample_conf(d, [T0 + i for i in range(10)], f"""
<match **>
  @type copy
  <store>
    @type file
    path {out}
    compress zstd
    <buffer time>
      timekey_use_utc true
      chunk_limit_records 4
    </buffer>
  </store>
  <store>
    @type file
    path {out2}
    append true
    compress zstd
    <buffer time>
      timekey_use_utc true
      chunk_limit_records 3
    </buffer>
  </store>
</match>""")
    oneshot(c)

    def unzstd(f):
        assert subprocess.run(["zstd", "-q", "-t", f]).returncode == 0, f
        return subprocess.run(["zstd", "-q", "-dc", f], capture_output=True, check=True).stdout.decode()
    files = sorted(glob.glob(out + ".*"))
    assert files == [out + f".20240101_{i}.log.zstd" for i in range(3)], files
    assert sorted(s for f in files for s in seqs_in(unzstd(f))) == list(range(10))
    files = sorted(glob.glob(out2 + ".*"))
    assert files == [out2 + ".20240101.log.zstd"], files
    frames = subprocess.run(["zstd", "-l", files[0]], capture_output=True, text=True, check=True)
    assert frames.stdout.splitlines()[1].split()[0] == "4", frames.stdout   # 3+3+3+1 records
    assert sorted(seqs_in(unzstd(files[0]))) == list(range(10))

def test_star_path_hour_slices_and_suffix_rules():
    d = tmpdir()
    out = os.path.join(d, "x", "file.*")
    c = sample_conf(d, [T0, T0 + 3600, T0 + 7200], f"""
<match **>
  @type file
  path {out}
  <buffer time>
    timekey 1h
    timekey_use_utc true
  </buffer>
</match>""")
    oneshot(c)
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(d, "x", "file.2*")))
    # '*' becomes the slice + index; no path_suffix is added (fluentd)
    assert names == ["file.2024010100_0", "file.2024010101_0", "file.2024010102_0"], names
    # add_path_suffix false / path_suffix
    out2 = os.path.join(d, "y", "f")
    c2 = sample_conf(d, [T0], f"""
<match **>
  @type file
  path {out2}
  path_suffix .txt
  <buffer>
    timekey_use_utc true
  </buffer>
</match>""")
    oneshot(c2)
    assert os.path.exists(out2 + ".20240101_0.txt"), os.listdir(os.path.dirname(out2))
    out3 = os.path.join(d, "z", "f")
    c3 = sample_conf(d, [T0], f"""
<match **>
  @type file
  path {out3}
  add_path_suffix false
  <buffer>
    timekey_use_utc true
  </buffer>
</match>""")
    oneshot(c3)
    assert os.path.exists(out3 + ".20240101_0"), os.listdir(os.path.dirname(out3))

def test_placeholders_tag_key_and_time_in_path():
    d = tmpdir()
    base = os.path.join(d, "logs")
    c = sample_conf(d, [T0, T0 + 3600, T0], f"""
<match **>
  @type file
  path {base}/${{tag}}/${{host}}/%Y/%m/%d/access.%H
  <buffer tag,time,host>
    timekey 1h
    timekey_use_utc true
  </buffer>
</match>""", extra_records=[{"host": "a"}, {"host": "a"}, {"host": "b"}])
    oneshot(c)
    got = sorted(os.path.relpath(f, base) for f in glob.glob(base + "/**/*.log", recursive=True))
    assert got == ["app.web/a/2024/01/01/access.00_0.log", "app.web/a/2024/01/01/access.01_0.log",
                   "app.web/b/2024/01/01/access.00_0.log"], got

def test_insufficient_time_placeholders_is_a_config_error():
    d = tmpdir()
    c = conf(f"""
<match **>
  @type file
  path {d}/o.%Y%m
  <buffer time>
    timekey 1d
  </buffer>
</match>""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "insufficient timestamp placeholders" in p.stderr, p.stderr
    c = conf(f"""
<match **>
  @type file
  path {d}/o.*
  <buffer []>
  </buffer>
</match>""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "chunk key 'time'" in p.stderr, p.stderr
    c = conf(f"""
<match **>
  @type file
  path {d}/${{tag}}/o
</match>""", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "tag" in p.stderr, p.stderr

def test_tag_or_key_escaping_the_directory_is_refused():
    d = tmpdir()
    base = os.path.join(d, "logs")
    buf = os.path.join(d, "buf")
    c = sample_conf(d, [T0], f"""
<match **>
  @type file
  path {base}/${{tag}}/o
  <buffer tag,time>
    path {buf}
    timekey_use_utc true
    retry_wait 0.1
  </buffer>
</match>""", tag="../../escaped")
    p = run(["-c", c, "--oneshot"], timeout=60)
    # unrecoverable: no retries, the chunk is kept in backup/, nothing outside base
    assert p.returncode != 0, p.stderr
    assert "leave the directory" in p.stderr, p.stderr
    assert "retry" not in p.stderr.lower() or "failed to flush" not in p.stderr, p.stderr
    assert not glob.glob(os.path.join(d, "escaped*")) and not glob.glob(d + "/../escaped*")
    assert len(glob.glob(os.path.join(buf, "backup", "*.chunk"))) == 1
    # a record key with a leading '/' too
    c = sample_conf(d, [T0], f"""
<match **>
  @type file
  path {base}/${{dir}}/o
  <buffer time,dir>
    path {buf}2
    timekey_use_utc true
  </buffer>
</match>""", extra_records=[{"dir": "/tmp/ls-abs-escape"}])
    p = run(["-c", c, "--oneshot"], timeout=60)
    assert p.returncode != 0 and not os.path.exists("/tmp/ls-abs-escape"), p.stderr

def test_symlink_path_points_to_the_latest_file():
    d = tmpdir()
    out = os.path.join(d, "o")
    link = os.path.join(d, "current.log")
    c = sample_conf(d, [T0, T0 + 86400], f"""
<match **>
  @type file
  path {out}
  symlink_path {link}
  <buffer>
    timekey_use_utc true
  </buffer>
</match>""")
    oneshot(c)
    assert os.path.islink(link)
    assert os.readlink(link) in (out + ".20240101_0.log", out + ".20240102_0.log")
    assert os.path.exists(os.readlink(link))

def _tf_source(msg, count, extra=""):
    """count records {"t": TF (2030-01-01), "msg": msg} with their time taken from t."""
    return f"""<source>
  @type sample
  tag a
  sample {{"t": {TF}, "msg": "{msg}"}}
  count {count}
  rate 100
  {extra}
</source>
<filter **>
  @type record_transformer
  renew_time_key t
</filter>"""

def _staged_chunks(conf_text, d):
    """Run an agent until its records are in the file buffer, then stop it without flushing."""
    c = conf(conf_text, d)
    a = Agent(c).start()
    a.wait_log(r"logship started")
    time.sleep(1.0)
    a.stop()   # file buffer: flush_at_shutdown false, chunks stay
    return c

def _recovery_conf(d, out, buf, append):
    return f"""
<system>
  without_source true
</system>
<match **>
  @type file
  path {out}
  append {str(append).lower()}
  <buffer time>
    @type file
    path {buf}
    timekey_use_utc true
  </buffer>
</match>"""

def _one_staged_chunk(d, out, buf, n):
    """n records {"msg": "x"} of 2030 in one staged chunk of out_file's file buffer; its id."""
    _staged_chunks(f"""
{_tf_source("x", n)}
<match **>
  @type file
  path {out}
  <buffer time>
    @type file
    path {buf}
    timekey_use_utc true
  </buffer>
</match>""", d)
    chunks = glob.glob(os.path.join(buf, "logship.*.chunk"))
    assert len(chunks) == 1, os.listdir(buf)
    return re.search(r"logship\.[bq]([0-9a-f]{32})\.chunk", chunks[0]).group(1)

def test_retry_after_crash_rewrites_the_same_file():
    d = tmpdir()
    out = os.path.join(d, "o")
    buf = os.path.join(d, "buf")
    cid = _one_staged_chunk(d, out, buf, 5)
    # as if the previous run had resolved the name, written it and crashed before the purge
    target = out + ".20300101_0.log"
    write(target, "half a file from the crashed attempt\n")
    write(os.path.join(buf, f"logship.{cid}.state"), f"owner\tfile.x\npath\t{target}\n")
    # the owner is the output's @id
    rc = _recovery_conf(d, out, buf, False).replace("@type file\n  path", "@type file\n  @id file.x\n  path", 1)
    oneshot(conf(rc, d, "r.conf"))
    files = sorted(glob.glob(out + ".*"))
    assert files == [target], files
    text = lstest.read(target)
    assert "crashed attempt" not in text and text.count("\"msg\":\"x\"") == 5, text
    assert not glob.glob(os.path.join(buf, "logship.*"))

def test_a_chunk_named_before_a_crash_keeps_its_name():
    """A crash after the chunk's part file got its name and before the state recorded it:
    the part file is still linked, so the restart keeps that name and writes nothing again
    (no second copy under the next index, no leftover part file)."""
    d = tmpdir()
    out = os.path.join(d, "o")
    buf = os.path.join(d, "buf")
    cid = _one_staged_chunk(d, out, buf, 3)
    write(out + ".20300101_0.log", "another chunk's file\n")
    target = out + ".20300101_1.log"
    write(target, "the chunk, written before the crash\n")
    part = os.path.join(d, f".logship-{cid}.part")
    os.link(target, part)
    p = oneshot(conf(_recovery_conf(d, out, buf, False), d, "r.conf"))
    assert sorted(glob.glob(out + ".*")) == [out + ".20300101_0.log", target]
    assert lstest.read(target) == "the chunk, written before the crash\n"
    assert "not writing it again" in p.stderr, p.stderr[-2000:]
    assert not os.path.exists(part) and not glob.glob(os.path.join(buf, "logship.*"))

def test_append_retry_after_crash_cuts_back_first():
    d = tmpdir()
    out = os.path.join(d, "o")
    buf = os.path.join(d, "buf")
    _staged_chunks(f"""
{_tf_source("y", 4)}
<match **>
  @type file
  @id fa
  path {out}
  append true
  <buffer time>
    @type file
    path {buf}
    timekey_use_utc true
  </buffer>
</match>""", d)
    chunks = glob.glob(os.path.join(buf, "logship.*.chunk"))
    assert len(chunks) == 1
    cid = re.search(r"logship\.[bq]([0-9a-f]{32})\.chunk", chunks[0]).group(1)
    target = out + ".20300101.log"
    earlier = "earlier line 1\nearlier line 2\n"
    # the crashed attempt had appended part of the chunk after 'earlier'
    write(target, earlier + "2030-01-01T00:00:00+00:00\ta\t{\"t\":18934")
    write(os.path.join(buf, f"logship.{cid}.state"), f"owner\tfa\npath\t{target}\nsize\t{len(earlier)}\n")
    rc = _recovery_conf(d, out, buf, True).replace("@type file\n  path", "@type file\n  @id fa\n  path", 1)
    oneshot(conf(rc, d, "r.conf"))
    text = lstest.read(target)
    assert text.startswith(earlier), text
    body = text[len(earlier):]
    assert body.count("\"msg\":\"y\"") == 4 and "{\"t\":18934\n" not in body, text
    assert len(body.splitlines()) == 4, text

def _unwritten_chunks(d, buf, count):
    """count records numbered n = 0.. in 2-record chunks that an always failing output left
    in the file buffer: full ones queued, the last one staged if count is odd."""
    _staged_chunks(f"""
{_tf_source("y", count, "auto_increment_key n")}
<match **>
  @type fault
  fail_times 1000000
  <buffer time>
    @type file
    path {buf}
    timekey_use_utc true
    chunk_limit_records 2
    retry_wait 60
  </buffer>
</match>""", d)

def test_recovered_chunks_are_written_oldest_first():
    """Queued (q) and staged (b) chunks from before a restart go out in the order they were
    made; sorting file names put the newest, staged one first."""
    d = tmpdir()
    out = os.path.join(d, "o")
    buf = os.path.join(d, "buf")
    _unwritten_chunks(d, buf, 5)
    names = sorted(os.path.basename(p)[8] for p in glob.glob(os.path.join(buf, "logship.*.chunk")))
    assert names == ["b", "q", "q"], names
    oneshot(conf(_recovery_conf(d, out, buf, True), d, "r.conf"))
    text = lstest.read(out + ".20300101.log")
    assert [json.loads(line.split("\t", 2)[2])["n"] for line in text.splitlines()] == \
        [0, 1, 2, 3, 4], text

def test_append_after_crash_cuts_only_the_unfinished_append():
    """Chunks a crash left behind, appended to one file out of their id order. Only the chunk
    that was mid-append (its size stored, no "done") is cut, at start; finished ones are not
    written again and keep the data appended after them. Cutting at retry time instead cut
    every chunk appended after the retried one began: whole batches lost."""
    d = tmpdir()
    out = os.path.join(d, "o")
    buf = os.path.join(d, "buf")
    _unwritten_chunks(d, buf, 8)
    ids = sorted(re.search(r"logship\.[bq]([0-9a-f]{32})\.chunk", p).group(1)
                 for p in glob.glob(os.path.join(buf, "logship.*.chunk")))
    assert len(ids) == 4, ids
    target = out + ".20300101.log"
    earlier = "earlier line\n"
    done1 = "chunk 1 finished, state done\n"
    legacy3 = "chunk 3 finished, state without done\n"
    torn = "2030-01-01T00:00:00+00:00\ta\t{\"t\":18934"
    write(target, earlier + done1 + legacy3 + torn)

    def state(cid, size, done=False):
        write(os.path.join(buf, f"logship.{cid}.state"),
              f"owner\tfa\npath\t{target}\nsize\t{size}\n" + ("done\n" if done else ""))
    state(ids[1], len(earlier), done=True)
    state(ids[3], len(earlier + done1))
    state(ids[0], len(earlier + done1 + legacy3))       # the last append: torn by the crash
    # ids[2] has no state: never written
    rc = _recovery_conf(d, out, buf, True).replace("@type file\n  path", "@type file\n  @id fa\n  path", 1)
    p = oneshot(conf(rc, d, "r.conf"))
    text = lstest.read(target)
    assert text.startswith(earlier + done1 + legacy3), text
    assert "was appending there" in p.stderr, p.stderr[-2000:]
    body = text[len(earlier + done1 + legacy3):]
    assert '{"t":18934\n' not in body and not body.startswith('{"t"'), text
    ns = sorted(json.loads(line.split("\t", 2)[2])["n"] for line in body.splitlines())
    assert ns == [0, 1, 4, 5], text          # chunks 0 and 2, each once
    assert not glob.glob(os.path.join(buf, "logship.*")), os.listdir(buf)

def test_secondary_file_names_and_gzip():
    d = tmpdir()
    err = os.path.join(d, "err")
    c = sample_conf(d, [T0 + i for i in range(6)], f"""
<match **>
  @type fault
  fail_times 1000
  <format>
    @type json
  </format>
  <buffer tag>
    chunk_limit_records 3
    retry_wait 0.1
    retry_max_times 0
  </buffer>
  <secondary>
    @type secondary_file
    directory {err}
    basename dump.${{tag}}
    compress gzip
  </secondary>
</match>""")
    oneshot(c)
    names = sorted(os.listdir(err))
    assert names == ["dump.app.web.0.gz", "dump.app.web.1.gz"], names
    seqs = []
    for n in names:
        with gzip.open(os.path.join(err, n), "rt") as f:
            seqs += [json.loads(l)["seq"] for l in f.read().splitlines()]
    assert sorted(seqs) == list(range(6))

def test_secondary_file_dumped_before_a_crash_is_not_dumped_again():
    d = tmpdir()
    err = os.path.join(d, "err")
    buf = os.path.join(d, "buf")
    _unwritten_chunks(d, buf, 1)
    chunks = glob.glob(os.path.join(buf, "logship.*.chunk"))
    assert len(chunks) == 1, os.listdir(buf)
    cid = re.search(r"logship\.[bq]([0-9a-f]{32})\.chunk", chunks[0]).group(1)
    write(os.path.join(err, "dump.0"), "the chunk, dumped before the crash\n")
    part = os.path.join(err, f".logship-{cid}.part")
    os.link(os.path.join(err, "dump.0"), part)
    p = oneshot(conf(f"""
<system>
  without_source true
</system>
<match **>
  @type fault
  fail_times 1000
  <buffer time>
    @type file
    path {buf}
    retry_wait 0.1
    retry_max_times 0
  </buffer>
  <secondary>
    @type secondary_file
    directory {err}
    basename dump
  </secondary>
</match>""", d, "r.conf"))
    assert sorted(os.listdir(err)) == ["dump.0"], os.listdir(err)
    assert lstest.read(os.path.join(err, "dump.0")) == "the chunk, dumped before the crash\n"
    assert "not writing it again" in p.stderr, p.stderr[-2000:]

def test_secondary_file_only_in_secondary():
    d = tmpdir()
    c = conf(f"<match **>\n  @type secondary_file\n  directory {d}\n</match>\n", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "<secondary>" in p.stderr, p.stderr
    c = conf(f"<match **>\n  @type fault\n  <secondary>\n    @type secondary_file\n    directory {d}\n    basename a/b\n  </secondary>\n</match>\n", d)
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "basename" in p.stderr, p.stderr

def test_kill9_loop_leaves_only_whole_files():
    """Issue 18: tail -> file buffer -> out_file gzip, killed with -9 while chunks are being
    written, then a --oneshot run. Every file in the output directory, hidden ones included,
    must be a non-empty, valid gzip file, and every line must be in them exactly once. A name
    reserved by an empty file before a crash used to stay behind, empty and invalid, when the
    chunk's data went to another index after the restart."""
    import random
    import relkit
    rounds = 40 if lstest.LONG else 10
    seed = int(os.environ.get("SEED", time.time()))
    rnd = random.Random(seed)
    d = tmpdir()
    log = os.path.join(d, "app.log")
    outdir = os.path.join(d, "out")
    c = conf(relkit.tail_source(log, d, tag="app") + f"""
<match **>
  @type file
  path {outdir}/app
  compress gzip
  <format>
    @type single_value
  </format>
  <buffer time>
    @type file
    path {d}/buf
    timekey 1h
    chunk_limit_records 20
    flush_thread_count 2
    retry_wait 0.2
    retry_forever true
  </buffer>
</match>""", d)
    sent = 0

    def add(n):
        nonlocal sent
        with open(log, "a") as f:
            f.write("".join(f"line {i}\n" for i in range(sent, sent + n)))
        sent += n

    def out_files():
        return os.listdir(outdir) if os.path.isdir(outdir) else []

    a = Agent(c)
    for _ in range(rounds):
        add(3000)
        a.start()
        # kill while chunks are being written: once the first file of this run appears
        before = len(out_files())
        wait_until(lambda: len(out_files()) > before or not a.alive(), 30, 0.01,
                   what="a file written")
        time.sleep(rnd.uniform(0, 0.3))
        a.kill9()
        a.out.close()
        a.err.close()
    oneshot(c, timeout=120)
    bad, lines = [], []
    for name in sorted(out_files()):
        pth = os.path.join(outdir, name)
        if os.path.getsize(pth) == 0 or subprocess.run(["gzip", "-t", pth],
                                                       capture_output=True).returncode != 0:
            bad.append(f"{name} ({os.path.getsize(pth)} bytes)")
            continue
        with gzip.open(pth, "rt") as f:
            lines += f.read().splitlines()
    assert not bad, f"seed {seed}: empty or invalid files in the output directory: {bad}"
    got = sorted(int(l.split()[1]) for l in lines)
    dups = len(got) - len(set(got))
    missing = set(range(sent)) - set(got)
    assert dups == 0 and not missing, (f"seed {seed}: {sent} lines, {dups} duplicates, "
                                       f"{len(missing)} missing (first {sorted(missing)[:3]})")

def test_pieces_compressed_while_staged_are_checked_before_use():
    """A file buffer's staged chunk of a gzip output has its full 1 MiB pieces compressed
    early into a side file (logship.<id>.gzp) on two or more CPUs. That file is a cache: a
    damaged or cut one after a restart must still give exactly the lines, in order, and it
    goes with its chunk."""
    if len(os.sched_getaffinity(0)) < 2:
        raise lstest.Skip("early compression needs two CPUs")
    d = tmpdir()
    out = os.path.join(d, "o")
    buf = os.path.join(d, "buf")
    log = os.path.join(d, "in.log")
    n = 60000
    with open(log, "w") as f:
        for i in range(n):
            f.write("%08d GET /items/%d?q=%x HTTP/1.1 200 %d \"Mozilla/5.0 (X11; Linux x86_64)\"\n"
                    % (i, i * 7919 % 100003, i * 2654435761 % (1 << 32), i % 50000))
    c = conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/pos
  read_from_head true
  tag a
  <parse>
    @type none
  </parse>
</source>
<match **>
  @type file
  path {out}
  compress gzip
  <buffer time>
    @type file
    path {buf}
    timekey 1d
    timekey_wait 1d
  </buffer>
</match>""", d)
    a = Agent(c).start()
    a.wait_log(r"logship started")
    side = lambda: glob.glob(os.path.join(buf, "logship.*.gzp"))
    # 60,000 lines of about 120 bytes of JSON: 6 full pieces
    wait_until(lambda: side() and os.path.getsize(side()[0]) > 5 * 80000, timeout=30)
    time.sleep(0.5)
    a.stop()    # file buffer: the chunk stays staged, its side file with it
    gzp = side()
    assert len(gzp) == 1 and os.path.getsize(gzp[0]) > 0, os.listdir(buf)
    with open(gzp[0], "r+b") as f:
        size = os.path.getsize(gzp[0])
        f.seek(48 + 1000)              # the first piece's compressed bytes
        b = f.read(1)
        f.seek(48 + 1000)
        f.write(bytes([b[0] ^ 0x40]))
        f.truncate(size - 77)          # and the last record cut short
    oneshot(c)
    files = glob.glob(out + ".*")
    assert len(files) == 1 and files[0].endswith(".gz"), files
    assert subprocess.run(["gzip", "-t", files[0]]).returncode == 0
    with gzip.open(files[0], "rt") as f:
        seqs = [int(json.loads(l.split("\t")[2])["message"][:8]) for l in f if l.strip()]
    assert seqs == list(range(n)), (len(seqs), seqs[:3], seqs[-3:])
    assert not glob.glob(os.path.join(buf, "logship.*")), os.listdir(buf)
