"""out_s3 multipart uploads against moto: chunks whose payload is above
multipart_threshold go up in parts (>= 5 MiB except the last); a part that
fails is retried without re-sending the parts S3 already holds; a
CompleteMultipartUpload answered "200 OK" with an <Error> body is a failure;
kill -9 between parts, then a restart, resumes the same upload (ListParts)
and the object exists once with the right content. No multipart upload is
left behind. zstd and lzma2 payloads go up the same way: the parts are byte
ranges of one zstd frame / xz stream, which the real tools decompress whole,
and a payload compressed again after a crash (its side file lost) is the same
bytes, so the upload still resumes.
"""
import base64, os, random, re, sys
import lstest
from lstest import Agent, conf, tmpdir, wait_until, write
from faultproxy import FaultProxy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_s3 as base  # noqa: E402
from s3server import S3Server  # noqa: E402

MiB = 1 << 20


def make_log(d, size):
    """~size bytes of JSON lines with incompressible-ish content."""
    rnd = random.Random(7)
    lines, total, i = [], 0, 0
    while total < size:
        blob = base64.b64encode(rnd.getrandbits(576).to_bytes(72, "little")).decode()
        line = '{"seq": %d, "blob": "%s"}\n' % (i, blob)
        lines.append(line)
        total += len(line)
        i += 1
    path = os.path.join(d, "big.log")
    write(path, "".join(lines))
    return path, i


def mp_conf(srv, d, endpoint, log, store="text", extra="", buffer_extra="", prefix="mp/"):
    return conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/big.pos
  tag big
  read_from_head true
  <parse>
    @type json
  </parse>
</source>
<match **>
  @type s3
  aws_key_id "#{{ENV['S3_KEY']}}"
  aws_sec_key "#{{ENV['S3_SECRET']}}"
  s3_bucket {srv.bucket}
  s3_endpoint {endpoint}
  force_path_style true
  path {prefix}
  store_as {store}
  multipart_threshold 6m
  multipart_chunk_size 5m
  http_stall_timeout 3
{extra}
  <buffer time>
    @type file
    path {d}/buf
    timekey 1d
    chunk_limit_size 64m
    retry_wait 0.2
    retry_max_interval 1
    retry_randomize false
{buffer_extra}
  </buffer>
</match>
""", d)


def seqs_of(text):
    return [r["seq"] for r in base.records_of(text)]


def no_uploads_left(srv):
    r = srv.admin.list_multipart_uploads(Bucket=srv.bucket)
    return r.get("Uploads", [])


# store_as -> (object extension, how to read it back)
STORES = {
    "text": ("txt", lambda b: b.decode()),
    "gzip": ("gz", base.zcat),
    "zstd": ("zst", lambda b: base.unpack("zstd", b)),
    "lzma2": ("xz", lambda b: base.unpack("xz", b)),
}


def test_multipart_upload_of_every_store():
    srv = S3Server.start()
    d = tmpdir()
    log, n = make_log(d, 12 * MiB)
    c = mp_conf(srv, d, srv.endpoint, log)
    base.oneshot(c, base.s3env(srv), timeout=180)
    objs = srv.list_objects("mp/")
    assert len(objs) == 1, objs
    k = objs[0]["Key"]
    assert k.endswith("_0.txt"), k
    assert srv.head_object(k)["ETag"].strip('"').endswith("-3"), srv.head_object(k)["ETag"]  # 5+5+~2 MiB
    assert seqs_of(srv.get_object(k).decode()) == list(range(n))
    assert not no_uploads_left(srv)
    # compressed: random base64 compresses ~4:3, so 12 MiB of lines give a multipart object
    for store in ("gzip", "zstd", "lzma2"):
        ext, read = STORES[store]
        d2 = tmpdir()
        log2, n2 = make_log(d2, 12 * MiB)
        base.oneshot(mp_conf(srv, d2, srv.endpoint, log2, store=store), base.s3env(srv), timeout=180)
        objs = [o for o in srv.list_objects("mp/") if o["Key"].endswith("." + ext)]
        assert len(objs) == 1 and "-" in srv.head_object(objs[0]["Key"])["ETag"], (store, objs)
        assert seqs_of(read(srv.get_object(objs[0]["Key"]))) == list(range(n2)), store
        assert not no_uploads_left(srv)


def test_failed_part_and_complete_200_error_resume_without_resending_parts():
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("500", method="PUT", query="partNumber=2", times=1)
    px.add("200err", method="POST", query="uploadId", times=1)
    d = tmpdir()
    log, n = make_log(d, 12 * MiB)
    p = base.oneshot(mp_conf(srv, d, px.endpoint, log), base.s3env(srv), timeout=180)
    objs = srv.list_objects("mp/")
    assert len(objs) == 1, objs
    assert seqs_of(srv.get_object(objs[0]["Key"]).decode()) == list(range(n))
    # one upload id throughout; part 1 sent once, part 2 twice (the 500), the complete twice
    inits = px.requests("POST", "?uploads")
    assert len(inits) == 1, [e["target"] for e in inits]
    assert len(px.requests("PUT", "partNumber=1&")) == 1
    assert len(px.requests("PUT", "partNumber=2&")) == 2
    assert len(px.requests("POST", "uploadId=")) == 2
    assert "CompleteMultipartUpload" in p.stderr and "InternalError" in p.stderr, p.stderr[-3000:]
    assert not no_uploads_left(srv)


def kill9_between_parts_then_resume(store):
    ext, read = STORES[store]
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("stall", method="PUT", query="partNumber=2", times=None, seconds=120)
    d = tmpdir()
    log, n = make_log(d, 12 * MiB)
    c = mp_conf(srv, d, px.endpoint, log, store=store)
    a = Agent(c, args=["--oneshot"], env=lstest.sanitizer_env(base.s3env(srv))).start()
    wait_until(lambda: px.requests("PUT", "partNumber=2&"), 60, what="part 2 in flight")
    a.kill9()
    buf = os.path.join(d, "buf")
    states = [f for f in os.listdir(buf) if f.endswith(".state")]
    assert len(states) == 1, os.listdir(buf)
    st = lstest.read(os.path.join(buf, states[0]))
    assert "upload\t" in st and "etag\t1\t" in st, st
    side = [f for f in os.listdir(buf) if f.endswith("." + ext)]
    assert side, os.listdir(buf)   # the side file is kept
    if store != "text":
        # lose it: compressing the chunk again must give the same bytes, or part 1 is wasted
        os.unlink(os.path.join(buf, side[0]))
    assert len(srv.admin.list_multipart_uploads(Bucket=srv.bucket).get("Uploads", [])) == 1
    px.clear()
    p = base.oneshot(c, base.s3env(srv), timeout=180)
    assert "resuming multipart upload" in p.stderr, (store, p.stderr[-3000:])
    assert re.search(r"1 of [23] parts already there", p.stderr), (store, p.stderr[-3000:])
    objs = srv.list_objects("mp/")
    assert len(objs) == 1 and objs[0]["Key"].endswith("." + ext), objs
    assert seqs_of(read(srv.get_object(objs[0]["Key"]))) == list(range(n)), store
    # part 1 crossed the wire once in total; one upload id
    assert len(px.requests("PUT", "partNumber=1&")) == 1, store
    assert len(px.requests("POST", "?uploads")) == 1, store
    assert not no_uploads_left(srv)
    assert not [f for f in os.listdir(buf) if f.startswith("logship.")], os.listdir(buf)


def test_kill9_between_parts_resumes_the_upload():
    kill9_between_parts_then_resume("text")


def test_kill9_between_parts_resumes_a_zstd_or_xz_upload_compressed_again():
    for store in ("zstd", "lzma2"):
        kill9_between_parts_then_resume(store)


def early_pieces(buf):
    """Whole records in the buffer's early-gzip side files (logship.*.gzp: 48-byte headers,
    the compressed length at offset 24)."""
    n = 0
    for f in os.listdir(buf):
        if f.endswith(".gzp"):
            data = open(os.path.join(buf, f), "rb").read()
            off = 0
            while off + 48 <= len(data):
                olen = int.from_bytes(data[off + 24:off + 28], "little")
                if off + 48 + olen > len(data):
                    break
                n, off = n + 1, off + 48 + olen
    return n


def test_early_gzip_pieces_taken_in_process_and_checked_after_a_restart():
    """Pieces compressed while a chunk is staged are taken as they are by the process that
    compressed them (the chunk is not read again under them) and checked against the chunk
    by a process that recovered it after kill -9: both objects hold every line once."""
    srv = S3Server.start()
    for restart in (False, True):
        d = tmpdir()
        log, n = make_log(d, 12 * MiB)
        c = mp_conf(srv, d, srv.endpoint, log, store="gzip", prefix="early%d/" % restart,
                    buffer_extra="    flush_at_shutdown true")
        a = Agent(c, env=lstest.sanitizer_env(base.s3env(srv))).start()
        buf = os.path.join(d, "buf")
        wait_until(lambda: os.path.isdir(buf) and early_pieces(buf) >= 10, 120,
                   what="early pieces")
        if restart:
            a.kill9()
            p = base.oneshot(c, base.s3env(srv), timeout=180)
            assert p.returncode == 0, p.stderr[-3000:]
        else:
            a.stop()
        objs = srv.list_objects("early%d/" % restart)
        assert len(objs) == 1, objs
        assert seqs_of(base.zcat(srv.get_object(objs[0]["Key"]))) == list(range(n)), restart
        assert not no_uploads_left(srv)


def test_chunk_given_up_to_the_secondary_aborts_its_multipart_upload():
    """Part 2 always fails: after retry_max_times the chunk goes to <secondary>, and the
    upload whose part 1 S3 already holds is aborted instead of left (and billed) behind."""
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("500", method="PUT", query="partNumber=2", times=None)
    d = tmpdir()
    log, n = make_log(d, 12 * MiB)
    sec = os.path.join(d, "secondary")
    c = mp_conf(srv, d, px.endpoint, log, extra=f"""
  <secondary>
    @type secondary_file
    directory {sec}
  </secondary>""", buffer_extra="    retry_max_times 1")
    p = base.oneshot(c, base.s3env(srv), timeout=180, ok=False)
    assert os.path.isdir(sec) and os.listdir(sec), p.stderr[-3000:]
    assert "aborting its multipart upload" in p.stderr, p.stderr[-3000:]
    wait_until(lambda: px.requests("DELETE", "uploadId="), 10, what="AbortMultipartUpload")
    assert not no_uploads_left(srv), no_uploads_left(srv)
    assert len(px.requests("POST", "?uploads")) >= 1
    assert not srv.list_objects("mp/")
    # the records went to the secondary, all of them
    got = 0
    for f in os.listdir(sec):
        got += lstest.read(os.path.join(sec, f)).count("\n")
    assert got == n, (got, n)
