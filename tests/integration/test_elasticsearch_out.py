"""@type elasticsearch (fluent-plugin-elasticsearch's out_elasticsearch) against a bulk API
stand-in on 127.0.0.1 (tests/lib/esserver.py: no Elasticsearch runs on Debian 12). Each test
tails a JSON log and reads back what the server indexed: index names, _type by server
version, @timestamp, ids, the per-item answers (retried records sent again from the chunk
and indexed once, 400s to @ERROR, unrecoverable types to backup), and the real td-agent
shapes of configuration."""
import glob, gzip, json, os, time

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
from esserver import ESServer

ENV = dict(os.environ, TZ="UTC")


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def es_conf(d, es, out="", buffer_extra="", source_extra="", extra="", plugin="elasticsearch"):
    return conf(f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/pos
  read_from_head true
  tag app.web
  <parse>
    @type json
    time_key t
    time_type float
  </parse>
  {source_extra}
</source>
<match app.**>
  @type {plugin}
  host 127.0.0.1
  port {es.port}
  {out}
  <buffer>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
    {buffer_extra}
  </buffer>
</match>
{extra}
""", d)


def oneshot(c, timeout=60):
    return run(["-c", c, "--oneshot"], env=ENV, timeout=timeout)


T0 = 1704164645.25     # 2024-01-02T03:04:05.25Z


def test_logstash_format_index_timestamp_and_type_by_version():
    for version, want_type in (("6.8.23", "fluentd"), ("7.17.9", "_doc"), ("8.11.1", "<none>")):
        es = ESServer(version=version)
        d = tmpdir()
        log(d, [{"t": T0, "msg": "a"}, {"t": T0 + 86400, "msg": "b", "@timestamp": "x"}])
        p = oneshot(es_conf(d, es, "logstash_format true\n  include_tag_key true"))
        assert p.returncode == 0, p.stderr[-2000:]
        docs = es.all_docs()
        assert sorted(docs) == ["logstash-2024.01.02", "logstash-2024.01.03"], docs
        (i1, s1, t1), = docs["logstash-2024.01.02"]
        assert t1 == want_type, (version, t1)
        assert s1 == {"msg": "a", "@timestamp": "2024-01-02T03:04:05.250000000+00:00",
                      "tag": "app.web"}, s1
        # a record that has @timestamp keeps it (and its date comes from the event time
        # when it does not parse)
        (_, s2, _), = docs["logstash-2024.01.03"]
        assert s2 == {"msg": "b", "@timestamp": "x", "tag": "app.web"}, s2
        assert [r for r in es.requests if r[0] == "GET" and r[1] == "/"], es.requests


def test_index_name_placeholder_ids_create_remove_keys_and_target_index():
    es = ESServer()
    d = tmpdir()
    log(d, [{"t": T0, "id": "a1", "msg": "one", "secret": 1},
            {"t": T0, "id": "a1", "msg": "again", "secret": 2},
            {"t": T0, "msg": "no id", "secret": 3},
            {"t": T0, "id": "b2", "msg": "elsewhere", "where": {"idx": "Other-Index"}}])
    p = oneshot(es_conf(d, es, """index_name logs-${tag}
  id_key id
  write_operation create
  remove_keys secret
  target_index_key where.idx"""))
    assert p.returncode == 0, p.stderr[-2000:]
    docs = es.all_docs()
    # create: the second a1 is a 409 (done, not retried), the record without an id is dropped
    assert docs == {"logs-app.web": [("a1", {"id": "a1", "msg": "one"}, "_doc")],
                    "other-index": [("b2", {"id": "b2", "msg": "elsewhere", "where": {}},
                                     "_doc")]}, docs
    assert len(es.bulks()) == 1


def test_item_failures_retried_from_the_chunk_and_400_to_error_label():
    es = ESServer()
    d = tmpdir()
    recs = [{"t": T0 + i, "n": i} for i in range(50)]
    recs[7]["_fail"] = [429, "circuit_breaking_exception"]
    recs[7]["_fail_times"] = 2
    recs[30]["_fail"] = [503, "unavailable_shards_exception"]
    recs[41]["_fail"] = [400, "mapper_parsing_exception"]
    recs[41]["_fail_times"] = 99
    log(d, recs)
    c = es_conf(d, es, "log_es_400_reason true", extra=f"""
<label @ERROR>
  <match **>
    @type file
    path {d}/errors
    append true
    <format>
      @type json
    </format>
    <buffer>
      flush_mode immediate
    </buffer>
  </match>
</label>
""")
    p = oneshot(c)
    assert p.returncode == 0, p.stderr[-3000:]
    docs = es.all_docs()["fluentd"]
    ns = sorted(s["n"] for _, s, _ in docs)
    # every record but the rejected one, each once; the retries sent only the failed ones
    assert ns == [i for i in range(50) if i != 41], ns
    sizes = [len([l for l in (gzip.decompress(b) if h.get("Content-Encoding") == "gzip" else b)
                  .decode().split("\n") if l]) // 2 for _, _, h, b in es.bulks()]
    assert sizes == [50, 2, 1], sizes
    errs = [json.loads(l) for f in glob.glob(f"{d}/errors*") if os.path.isfile(f)
            for l in open(f)]
    assert [e["n"] for e in errs] == [41], errs
    assert "did not index 2 of 50 records" in p.stderr, p.stderr[-3000:]


def test_unrecoverable_error_type_sends_the_chunk_to_backup():
    es = ESServer()
    d = tmpdir()
    log(d, [{"t": T0, "n": 1, "_fail": [429, "es_rejected_execution_exception"]}])
    a = Agent(es_conf(d, es), env=ENV).start()
    try:
        a.wait_log("Rejected Elasticsearch due to es_rejected_execution_exception")
        wait_until(lambda: glob.glob(f"{d}/buf/backup/**/*", recursive=True), what="backup")
    finally:
        a.stop()
    assert es.all_docs() == {}


def test_server_down_then_up_basic_auth_gzip_and_hosts():
    es = ESServer(version="7.10.2", user="elastic", password="s3cret")
    es.down = True
    d = tmpdir()
    log(d, [{"t": T0, "n": i} for i in range(5)])
    c = es_conf(d, es, f"""hosts 127.0.0.1:1,127.0.0.1:{es.port}
  user elastic
  password s3cret
  compression_level best_speed
  logstash_format true
  logstash_prefix App""")
    a = Agent(c, env=ENV).start()
    try:
        wait_until(lambda: len([r for r in es.requests if r[0] == "GET"]) >= 1,
                   what="a version request")
        time.sleep(0.5)
        assert es.all_docs() == {}
        es.down = False
        wait_until(lambda: len(es.all_docs().get("app-2024.01.02", [])) == 5, timeout=30,
                   what="5 documents")
    finally:
        a.stop()
    gz = [h for _, _, h, _ in es.bulks() if h.get("Content-Encoding") == "gzip"]
    assert gz, es.requests
    assert "Connection refused" in a.log() or "Couldn't connect" in a.log(), a.log()[-2000:]


def test_update_and_upsert():
    es = ESServer()
    d = tmpdir()
    log(d, [{"t": T0, "id": 1, "a": 1, "drop": "x"}, {"t": T0, "id": 1, "b": 2, "drop": "y"}])
    p = oneshot(es_conf(d, es, """id_key id
  write_operation upsert
  remove_keys_on_update drop"""))
    assert p.returncode == 0, p.stderr[-2000:]
    (doc,) = es.all_docs()["fluentd"]
    # upsert: the first is inserted whole (upsert body), the second updates without `drop`
    assert doc[1] == {"id": 1, "a": 1, "drop": "x", "b": 2}, doc


def test_real_td_agent_shapes_run_and_refused_features_name_the_line():
    es = ESServer()
    d = tmpdir()
    log(d, [{"t": T0, "msg": "x"}])
    # a v0.12 file as public td-agent configurations write it
    c = conf(f"""
<source>
  type tail
  path {d}/in.log
  pos_file {d}/pos
  read_from_head true
  tag docker.web
  format json
  time_key t
  time_type float
</source>
<match docker.**>
  type elasticsearch
  host 127.0.0.1
  port {es.port}
  logstash_format true
  logstash_prefix fluentd
  logstash_dateformat %Y%m%d
  include_tag_key true
  type_name access_log
  tag_key @log_name
  flush_interval 1s
  buffer_type file
  buffer_path {d}/buf
</match>
""", d)
    p = oneshot(c)
    assert p.returncode == 0, p.stderr[-2000:]
    (doc,) = es.all_docs()["fluentd-20240102"]
    assert doc[1]["@log_name"] == "docker.web" and doc[2] == "_doc", doc
    for key, val in (("template_name", "t"), ("enable_ilm", "true"), ("cloud_id", "x")):
        c = conf(f"<match a>\n  @type elasticsearch\n  {key} {val}\n</match>\n")
        p = run(["-c", c, "--dry-run"])
        assert p.returncode != 0 and f"'{key}' is not supported" in p.stderr, p.stderr
        assert ".conf:3:" in p.stderr, p.stderr
    c = conf("<match a>\n  @type elasticsearch\n  user u\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "`password` must be present" in p.stderr, p.stderr
    c = conf("<match a>\n  @type elasticsearch\n  <buffer time>\n    timekey 1h\n  </buffer>\n"
             "</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "'tag' or '_index' in chunk_keys is required" in p.stderr


def test_bulk_message_request_threshold_splits_a_chunk_and_a_failed_part_resumes():
    es = ESServer()
    d = tmpdir()
    recs = [{"t": T0 + i, "n": i, "pad": "x" * 50} for i in range(40)]
    recs[25]["_fail"] = [503, "unavailable_shards_exception"]
    log(d, recs)
    p = oneshot(es_conf(d, es, "bulk_message_request_threshold 1k"))
    assert p.returncode == 0, p.stderr[-2000:]
    ns = sorted(s["n"] for _, s, _ in es.all_docs()["fluentd"])
    assert ns == list(range(40)), ns
    sizes = [len([l for l in b.decode().split("\n") if l]) // 2 for _, _, _, b in es.bulks()]
    assert len(sizes) > 3 and max(sizes) < 40, sizes
    # each record is sent once, the failed one twice: the retry skips what was indexed
    assert sum(sizes) == 41, sizes


def test_opensearch_type_by_version_and_its_parameter_names():
    for version, want_type in (("1.3.14", "_doc"), ("2.11.1", "<none>")):
        es = ESServer(version=version)
        d = tmpdir()
        log(d, [{"t": T0, "msg": "a", "_fail": [400, "mapper_parsing_exception"]},
                {"t": T0, "msg": "b", "r": "shard-7"}])
        c = es_conf(d, es, """logstash_format true
  routing_key r
  log_os_400_reason true
  emit_error_label_event false""", plugin="opensearch")
        p = oneshot(c)
        assert p.returncode == 0, p.stderr[-2000:]
        (doc,) = es.all_docs()["logstash-2024.01.02"]
        assert doc[2] == want_type and doc[1]["msg"] == "b", (version, doc)
        body = es.bulks()[0][3].decode().split("\n")
        assert '"routing":"shard-7"' in body[2], body
        # emit_error_label_event false: the rejected record is logged, not sent to @ERROR
        assert "Rejected by OpenSearch [error type]: mapper_parsing_exception" in p.stderr
        assert "dump an error event" not in p.stderr, p.stderr[-2000:]
    c = conf("<match a>\n  @type opensearch\n  <endpoint>\n    url https://x\n  </endpoint>\n"
             "</match>\n")
    p = run(["-c", c, "--dry-run"])
    # <endpoint> is AWS SigV4 (tests/integration/test_aws_elasticsearch.py); region is required
    assert p.returncode != 0 and "'region'" in p.stderr and ".conf:3:" in p.stderr, p.stderr


def test_genid_ids_make_a_resent_bulk_overwrite_instead_of_duplicate():
    import base64, hashlib, uuid
    # a bulk indexed whose answer is lost is sent again: with elasticsearch_genid's ids the
    # documents are overwritten, without them they would be there twice
    es = ESServer()
    es.lose_answers = 1
    d = tmpdir()
    log(d, [{"t": T0 + i, "n": i} for i in range(20)])
    c = es_conf(d, es, "id_key _hash")
    text = open(c).read().replace("<match app.**>", "<filter app.**>\n  @type elasticsearch_genid\n"
                                  "</filter>\n<match app.**>")
    write(c, text)
    p = oneshot(c)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(es.bulks()) == 2, es.requests
    docs = es.all_docs()["fluentd"]
    assert sorted(s["n"] for _, s, _ in docs) == list(range(20)), docs
    for doc_id, s, _ in docs:
        assert doc_id == s["_hash"]
        assert uuid.UUID(base64.b64decode(doc_id).decode()).version == 4, doc_id
    # use_record_as_seed: Base64 of the digest of tag_time_values, as the filter makes it
    es2 = ESServer()
    d2 = tmpdir()
    log(d2, [{"t": T0, "a": "x", "b": 2}])
    c2 = es_conf(d2, es2, "id_key id")
    text = open(c2).read().replace("<match app.**>", """<filter app.**>
  @type elasticsearch_genid
  hash_id_key id
  use_record_as_seed true
  record_keys a,b,missing
  include_tag_in_seed true
  include_time_in_seed true
  hash_type sha256
</filter>
<match app.**>""")
    write(c2, text)
    p = oneshot(c2)
    assert p.returncode == 0, p.stderr[-2000:]
    (doc,) = es2.all_docs()["fluentd"]
    seed = f"app.web_{int(T0)}_x_2_".encode()
    assert doc[0] == base64.b64encode(hashlib.sha256(seed).digest()).decode(), (doc, seed)
