"""out_s3 under faults: a fault-injecting proxy (tests/lib/faultproxy.py) in front
of moto answers with 503 SlowDown, 500, 400 RequestTimeout, resets, stalls,
RequestTimeTooSkewed with a skewed Date, and stores objects but never answers
(the client cannot know the PUT worked). Every record must arrive exactly once,
in exactly one object per chunk; kill -9 with uploads in flight, then a restart,
must not create a second copy of anything (the key is kept in the chunk state).
"""
import os, re, sys, time
import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
from faultproxy import FaultProxy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_s3 as base  # noqa: E402  (helpers and the moto query fix)
from s3server import S3Server  # noqa: E402


def tail_conf(srv, d, endpoint, lines, body="", buffer_body="", keys=True):
    log = os.path.join(d, "app.log")
    write(log, "".join(f'{{"seq": {i}, "msg": "record {i} {"x" * 40}"}}\n' for i in range(lines)))
    return conf(f"""
<source>
  @type tail
  path {log}
  pos_file {d}/app.pos
  tag app
  read_from_head true
  <parse>
    @type json
  </parse>
</source>
<match **>
  @type s3
{KEYS if keys else ""}
  s3_bucket {srv.bucket}
  s3_endpoint {endpoint}
  force_path_style true
  path logs/
  http_stall_timeout 2
{body}
  <buffer time>
    @type file
    path {d}/buf
    timekey 1d
    timekey_use_utc true
    chunk_limit_records 5
    flush_thread_count 2
    retry_wait 0.2
    retry_max_interval 1
    retry_randomize false
{buffer_body}
  </buffer>
</match>
""", d)


KEYS = """  aws_key_id "#{ENV['S3_KEY']}"
  aws_sec_key "#{ENV['S3_SECRET']}"
"""


def check_exactly_once(srv, n_records, n_objects=None):
    objs = srv.list_objects("logs/")
    keys = [o["Key"] for o in objs]
    assert len(keys) == len(set(keys))
    seqs = []
    for k in keys:
        seqs.extend(r["seq"] for r in base.records_of(base.zcat(srv.get_object(k))))
    dup = sorted({s for s in seqs if seqs.count(s) > 1})
    assert not dup, f"records delivered twice: {dup[:20]} in {keys}"
    assert sorted(seqs) == list(range(n_records)), f"missing: {sorted(set(range(n_records)) - set(seqs))[:20]}"
    if n_objects is not None:
        assert len(keys) == n_objects, keys
    # %{index} is contiguous within the day: 0..n-1, no gaps from retries
    idx = sorted(int(re.search(r"_(\d+)\.gz$", k).group(1)) for k in keys)
    assert idx == list(range(len(keys))), keys
    return keys


def test_every_record_exactly_once_through_faults():
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("503", method="PUT", times=2)
    px.add("500", method="PUT", times=1)
    px.add("400", method="PUT", times=1)
    px.add("reset", method="PUT", times=1)
    px.add("stall", method="PUT", times=1, seconds=30)
    px.add("drop", method="PUT", times=2)          # stored, but the client hears nothing
    px.add("skew", method="PUT", times=1, seconds=3600, after_pass=3)
    px.add("503", method="HEAD", times=1)
    px.add("reset", method="GET", times=1)        # the LIST that seeds %{index}
    d = tmpdir()
    c = tail_conf(srv, d, px.endpoint, 60)
    p = base.oneshot(c, base.s3env(srv), timeout=120)
    keys = check_exactly_once(srv, 60, 12)
    # every fault fired, and the log names the S3 error codes
    fired = {e["action"] for e in px.log}
    assert {"503", "500", "400", "reset", "stall", "drop", "skew"} <= fired, fired
    for code in ("SlowDown", "InternalError", "RequestTimeout", "RequestTimeTooSkewed"):
        assert code in p.stderr, (code, p.stderr[-3000:])
    assert srv.secret not in p.stderr
    # after RequestTimeTooSkewed a following request was signed with the server's clock (+1 h)
    # (the one right after may have been signed before, by the other flush thread)
    i = next(i for i, e in enumerate(px.log) if e["action"] == "skew")

    def signed_at(e):
        v = {k.lower(): x for k, x in e["headers"].items()}.get("x-amz-date")
        return time.mktime(time.strptime(v, "%Y%m%dT%H%M%SZ")) - time.timezone
    assert any(abs(signed_at(e) - (px.log[i]["time"] + 3600)) < 120 for e in px.log[i + 1:i + 4]), \
        ([(e["target"], signed_at(e) - px.log[i]["time"]) for e in px.log[i + 1:i + 4]], p.stderr[-3000:])
    assert "server clock differs from ours" in p.stderr
    # a dropped PUT was stored; its retry overwrote the same key instead of taking a new index
    drops = [e["target"] for e in px.log if e["action"] == "drop"]
    for t in drops:
        k = t.split("?")[0].split("/", 2)[2]
        assert k in keys, (k, keys)
        assert len([e for e in px.log if e["method"] == "PUT" and e["target"] == t]) >= 2


def test_kill9_during_uploads_then_restart_no_duplicates():
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    # three uploads go through; then uploads reach S3 but are never acknowledged, or hang
    px.add("pass", method="PUT", times=3)
    px.add("hold", method="PUT", times=2, seconds=120)
    px.add("stall", method="PUT", times=None, seconds=120)
    d = tmpdir()
    c = tail_conf(srv, d, px.endpoint, 50, buffer_body="    flush_mode interval\n    flush_interval 1s")
    a = Agent(c, env=lstest.sanitizer_env(base.s3env(srv))).start()
    wait_until(lambda: len(px.requests("PUT")) >= 5 and any(e["action"] == "stall" for e in px.log),
               30, what="uploads in flight")
    # a held PUT is logged when it reaches the proxy, stored when the server answers it
    wait_until(lambda: len(srv.list_objects("logs/")) >= 5, 30, what="the held uploads stored")
    a.kill9()
    held = [e["target"].split("/", 2)[2] for e in px.log if e["action"] == "hold"]
    assert len(srv.list_objects("logs/")) == 5, srv.list_objects("logs/")   # 3 acknowledged + 2 held
    states = [f for f in os.listdir(os.path.join(d, "buf")) if f.endswith(".state")]
    assert states, os.listdir(os.path.join(d, "buf"))
    # restart without faults: everything arrives, once; the held objects are overwritten in place
    px.clear()
    p = base.oneshot(c, base.s3env(srv), timeout=120)
    keys = check_exactly_once(srv, 50, 10)
    for h in held:
        assert h in keys
    assert not [f for f in os.listdir(os.path.join(d, "buf")) if f.startswith("logship.")]
    assert srv.secret not in p.stderr + a.log()


def test_expired_token_refreshes_credentials_and_retries():
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("error", method="PUT", times=1, status=400, code="ExpiredToken")
    d = tmpdir()
    creds = write(os.path.join(d, "credentials"),
                  f"[logs]\naws_access_key_id = {srv.key}\naws_secret_access_key = {srv.secret}\n")
    c = tail_conf(srv, d, px.endpoint, 10, body=f"""
  <shared_credentials>
    path {creds}
    profile_name logs
  </shared_credentials>""", keys=False)
    p = base.oneshot(c, base.s3env(srv), timeout=60)
    check_exactly_once(srv, 10, 2)
    assert "ExpiredToken: refreshing the shared-file credentials" in p.stderr, p.stderr[-3000:]
    assert p.stderr.count("credentials from shared-file") >= 2, p.stderr[-3000:]
    assert srv.secret not in p.stderr


def test_check_object_false_uses_hms_slice_format_without_requests():
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    d = tmpdir()
    c = tail_conf(srv, d, px.endpoint, 5, body="  check_object false\n  check_apikey_on_start false\n  check_bucket false")
    base.oneshot(c, base.s3env(srv), timeout=60)
    keys = [o["Key"] for o in srv.list_objects("logs/")]
    # fluent-plugin-s3's check_object false default: %{path}/%{time_slice}_%{hms_slice}.%{file_extension}
    assert len(keys) == 1 and re.fullmatch(r"logs//\d{8}_\d{6}\.gz", keys[0]), keys
    # no HEAD, no LIST: one PUT per chunk and nothing else
    assert [e["method"] for e in px.log] == ["PUT"], [(e["method"], e["target"]) for e in px.log]


def test_key_fixed_before_a_crash_is_not_given_to_another_chunk():
    """A chunk's key is fixed (saved in its state) and its PUT fails; kill -9. After the
    restart a new chunk of the same slice must not take that %{index}: LIST cannot show an
    object that was never uploaded, and the old chunk's retry would overwrite the new one's
    object (the loss the crash loop in test_reliability.py found)."""
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    px.add("reset", method="PUT", times=None)
    d = tmpdir()
    c = tail_conf(srv, d, px.endpoint, 5, buffer_body="    flush_mode interval\n    flush_interval 0.2s")
    env = lstest.sanitizer_env(base.s3env(srv))
    a = Agent(c, env=env).start()
    wait_until(lambda: px.requests("PUT"), 30, what="the first PUT")
    wait_until(lambda: "failed to flush" in a.log(), 30, what="the failed flush")
    a.kill9()
    a.out.close()
    a.err.close()
    states = [f for f in os.listdir(os.path.join(d, "buf")) if f.endswith(".state")]
    assert states, os.listdir(os.path.join(d, "buf"))
    # 5 more records; the old chunk's PUT keeps failing while the new chunk picks its key
    log = os.path.join(d, "app.log")
    write(log, "".join(f'{{"seq": {i}, "msg": "record {i}"}}\n' for i in range(5, 10)), "a")
    a.start()

    def keyed():
        n = 0
        for f in os.listdir(os.path.join(d, "buf")):
            if f.endswith(".state"):
                try:
                    n += "\nkey\t" in lstest.read(os.path.join(d, "buf", f))
                except FileNotFoundError:
                    pass
        return n
    wait_until(lambda: keyed() >= 2 or srv.list_objects("logs/"), 30, what="the new chunk's key")
    px.clear()
    wait_until(lambda: len(srv.list_objects("logs/")) >= 2, 30, what="both objects")
    time.sleep(0.5)
    a.stop()
    keys = check_exactly_once(srv, 10, 2)
    assert srv.secret not in a.all_logs()


def test_list_objects_page_cap_is_logged():
    """A prefix whose listing never ends (every page truncated): logship stops at its
    1,000-page cap, says so, and still uploads (a HEAD confirms the key is free)."""
    srv = S3Server.start()
    px = FaultProxy(srv.endpoint).start()
    page = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name>'
            b'<IsTruncated>true</IsTruncated><NextMarker>logs/zz</NextMarker>'
            b'<Contents><Key>logs/zz</Key><Size>1</Size></Contents></ListBucketResult>')
    px.add("reply", method="GET", query="prefix=logs", status=200, body=page, times=None)
    d = tmpdir()
    a = Agent(tail_conf(srv, d, px.endpoint, 5), env=base.s3env(srv)).start()
    a.wait_log(r"ListObjects of 'logs/\S*' stopped at its cap of 1000 pages with more keys left",
               timeout=90)
    wait_until(lambda: len(srv.list_objects("logs/")) == 1, 30, what="the upload")
    assert a.stop() == 0
    lists = px.requests("GET", contains="prefix=logs")
    assert 1000 <= len(lists) <= 1002, len(lists)
    check_exactly_once(srv, 5, 1)
