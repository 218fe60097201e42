"""kinesis_streams and kinesis_firehose (aws-fluent-plugin-kinesis) against moto_server with
IAM authentication on (tests/lib/s3server.py): moto checks every request's SigV4 signature
and the user's policy, and boto3 (an independent client) reads back what landed: the
stream's records with GetRecords, the delivery stream's output from its S3 destination."""
import base64, json, os, re, zlib

import lstest
from lstest import Agent, conf, run, tmpdir, write
from s3server import S3Server, _policy

ENV = dict(os.environ, TZ="UTC")
for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
          "AWS_REGION", "AWS_DEFAULT_REGION"):
    ENV.pop(k, None)
ENV["AWS_EC2_METADATA_DISABLED"] = "true"
T0 = 1704164645.25     # 2024-01-02T03:04:05.25Z


def moto():
    srv = S3Server.start()
    iam = srv.client("iam", srv.admin_key, srv.admin_secret)
    pol = iam.create_policy(PolicyName="kinesis-all", PolicyDocument=_policy([{
        "Effect": "Allow", "Action": ["kinesis:*", "firehose:*"], "Resource": "*"}]))
    for user in ("logship", "verifier"):
        iam.attach_user_policy(UserName=user, PolicyArn=pol["Policy"]["Arn"])
    return srv


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def kconf(d, srv, out, key=None, secret=None):
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
</source>
<match app.**>
  region {srv.region}
  endpoint {srv.endpoint}
  aws_key_id {key or srv.key}
  aws_sec_key {secret or srv.secret}
{out}
  <buffer>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
  </buffer>
</match>
""", d)


def stream_records(srv, name):
    k = srv.client("kinesis", srv.admin_key, srv.admin_secret)
    out = []
    for shard in k.describe_stream(StreamName=name)["StreamDescription"]["Shards"]:
        it = k.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = k.get_records(ShardIterator=it, Limit=1000)
            out += r["Records"]
            if not r["Records"]:
                break
            it = r.get("NextShardIterator")
    return out


def test_streams_records_formatted_injected_batched_and_partition_keys():
    srv = moto()
    k = srv.client("kinesis", srv.admin_key, srv.admin_secret)
    k.create_stream(StreamName="logs", ShardCount=2)
    d = tmpdir()
    log(d, [{"t": T0 + i, "msg": f"m{i}", "user": f"u{i % 3}", "n": i} for i in range(12)])
    out = """  @type kinesis_streams
  stream_name logs
  partition_key user
  batch_request_max_count 5
  <inject>
    time_key time
  </inject>"""
    p = run(["-c", kconf(d, srv, out), "--oneshot"], env=ENV, timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = stream_records(srv, "logs")
    assert len(recs) == 12, recs
    got = sorted((json.loads(r["Data"]) for r in recs), key=lambda x: x["n"])
    # the plugin's <inject> defaults: time_type string, %Y-%m-%dT%H:%M:%S.%N%z
    assert got[0] == {"msg": "m0", "user": "u0", "n": 0,
                      "time": "2024-01-02T03:04:05.250000000+0000"}, got[0]
    assert {r["PartitionKey"] for r in recs} == {"u0", "u1", "u2"}
    # the JSON formatter's line end is part of the data, as the plugin sends it (chomp_record false)
    assert all(r["Data"].endswith(b"\n") for r in recs)


def test_streams_data_key_zlib_random_keys_and_left_out_records():
    srv = moto()
    k = srv.client("kinesis", srv.admin_key, srv.admin_secret)
    k.create_stream(StreamName="raw", ShardCount=1)
    d = tmpdir()
    log(d, [{"t": T0, "message": "hello"}, {"t": T0, "other": "no message"},
            {"t": T0, "message": os.urandom(3000).hex()}, {"t": T0, "message": "bye"}])
    out = """  @type kinesis_streams
  stream_name raw
  data_key message
  max_record_size 2048
  compression zlib"""
    p = run(["-c", kconf(d, srv, out), "--oneshot"], env=ENV, timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = stream_records(srv, "raw")
    assert [zlib.decompress(r["Data"]) for r in recs] == [b"hello", b"bye"], recs
    assert all(len(r["PartitionKey"]) == 32 for r in recs)
    assert "Key 'message' doesn't exist" in p.stderr, p.stderr[-3000:]
    assert re.search(r"Record size limit exceeded in [2-9] KB: \{\"message\":\"[0-9a-f]+", p.stderr), \
        p.stderr[-3000:]


def test_firehose_lines_to_s3_and_wrong_credentials_keep_the_data():
    srv = moto()
    fh = srv.client("firehose", srv.admin_key, srv.admin_secret)
    fh.create_delivery_stream(
        DeliveryStreamName="fh", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{srv.bucket}", "Prefix": "fh/"})
    d = tmpdir()
    log(d, [{"t": T0 + i, "msg": f"m{i}"} for i in range(3)])
    out = """  @type kinesis_firehose
  delivery_stream_name fh
  <format>
    @type single_value
    message_key msg
  </format>"""
    # a wrong secret: refused (403), the chunk retried and kept
    a = Agent(kconf(d, srv, out, secret="wrong"), env=ENV)
    a.start()
    a.wait_log(r"HTTP 403")
    a.wait_log(r"retry", timeout=20)
    assert a.stop() == 0, a.log()
    assert srv.list_objects("fh/") == []
    p = run(["-c", kconf(d, srv, out), "--oneshot"], env=ENV, timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    keys = sorted(o["Key"] for o in srv.list_objects("fh/"))
    body = b"".join(srv.get_object(key) for key in keys)
    # single_value's line end removed, then append_new_line's "\n"
    assert body == b"m0\nm1\nm2\n", body


def test_configuration():
    d = tmpdir()
    c = conf("<match a>\n  @type kinesis_streams\n  region us-east-1\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "stream_name" in p.stderr, p.stderr
    c = conf("<match a>\n  @type kinesis_firehose\n  delivery_stream_name x\n</match>\n")
    p = run(["-c", c, "--dry-run"], env=ENV)
    assert p.returncode != 0 and "no region" in p.stderr and ".conf:1:" in p.stderr, p.stderr
    c = conf("<match a>\n  @type kinesis_streams\n  stream_name s\n  region eu-west-3\n"
             "  compression lz4\n</match>\n")
    p = run(["-c", c, "--dry-run"], env=ENV)
    assert p.returncode != 0 and "compression" in p.stderr and ".conf:5:" in p.stderr, p.stderr
    # the public configurations' shapes
    c = conf("""<match kinesis.**>
  @type kinesis_streams
  stream_name aws-kinesis-agent-stream
  aws_key_id AKIAEXAMPLE
  aws_sec_key secret
  region eu-west-3
  <buffer>
    flush_interval 5s
    flush_thread_count 2
  </buffer>
</match>
<match fh.**>
  @type kinesis_firehose
  delivery_stream_name fluentdFirehose
  region us-east-1
  <assume_role_credentials>
    role_arn arn:aws:iam::123456789012:role/x
    role_session_name s
  </assume_role_credentials>
  <buffer time>
    timekey 1s
    timekey_wait 0s
  </buffer>
</match>
""", d)
    p = run(["-c", c, "--dry-run"], env=ENV)
    assert p.returncode == 0, p.stderr


def test_refused_records_stay_in_the_chunk_and_only_they_are_sent_again():
    """A stand-in PutRecords that refuses every third record of the first request
    (ProvisionedThroughputExceededException, as Kinesis answers a hot shard): the plugin
    retries them in a sleep loop and then drops them; logship sends exactly those again with
    the buffer's backoff, so every record lands once."""
    import http.server, threading
    stored, requests = [], []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.headers["X-Amz-Target"] == "Kinesis_20131202.PutRecords"
            requests.append(len(body["Records"]))
            res, failed = [], 0
            for i, r in enumerate(body["Records"]):
                if len(requests) == 1 and i % 3 == 1:
                    failed += 1
                    res.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                "ErrorMessage": "Rate exceeded for shard"})
                else:
                    stored.append(base64.b64decode(r["Data"]))
                    res.append({"SequenceNumber": str(len(stored)), "ShardId": "shardId-0"})
            out = json.dumps({"FailedRecordCount": failed, "Records": res}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    lstest.on_cleanup(httpd.shutdown)

    class Srv:
        region, key, secret = "us-east-1", "AKIAEXAMPLE", "secret"
        endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    d = tmpdir()
    log(d, [{"t": T0, "n": i} for i in range(10)])
    p = run(["-c", kconf(d, Srv, "  @type kinesis_streams\n  stream_name s"), "--oneshot"],
            env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(json.loads(x)["n"] for x in stored) == list(range(10)), stored
    assert requests == [10, 3], requests
    assert "3 of 10 records refused (ProvisionedThroughputExceededException/Rate exceeded" \
        in p.stderr, p.stderr[-3000:]
