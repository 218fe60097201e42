"""@type aws-elasticsearch-service (fluent-plugin-aws-elasticsearch-service) and opensearch's
<endpoint>: the elasticsearch output with every request signed by AWS SigV4. The bulk API
stand-in (tests/lib/esserver.py) checks each signature with botocore and answers 403 to one
that differs, as Amazon OpenSearch Service does; credentials come from the <endpoint>, or
from a fake STS (AssumeRoleWithWebIdentity) on 127.0.0.1 with a session token."""
import http.server, importlib, json, os, threading, time, urllib.parse

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
from esserver import ESServer

ENV = dict(os.environ, TZ="UTC")
for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
          "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
          "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL_STS"):
    ENV.pop(k, None)
ENV["AWS_EC2_METADATA_DISABLED"] = "true"
T0 = 1704164645.25     # 2024-01-02T03:04:05.25Z
KEY, SECRET = "AKIAESTEST0000000001", "es/secret+key0000000000000000000000000000"


def _need_botocore():
    try:
        importlib.import_module("botocore.auth")
    except ImportError as e:
        raise lstest.Skip(f"botocore missing: {e}")


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def aws_conf(d, endpoint, plugin="aws-elasticsearch-service", out=""):
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
  @type {plugin}
  logstash_format true
  include_tag_key true
  tag_key @log_name
  reload_connections false
  reconnect_on_error true
  {out}
  <endpoint>
{endpoint}
  </endpoint>
  <buffer>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
  </buffer>
</match>
""", d)


def oneshot(c, env=ENV, timeout=60):
    return run(["-c", c, "--oneshot"], env=env, timeout=timeout)


def test_static_keys_every_request_signed_as_botocore_signs_it_and_a_bad_key_keeps_the_data():
    _need_botocore()
    es = ESServer(sigv4=dict(key=KEY, secret=SECRET, region="ap-northeast-2", service="es"))
    d = tmpdir()
    log(d, [{"t": T0 + i, "msg": f"m{i}", "odd": "a b+c/é"} for i in range(5)])
    # a wrong secret: 403 from the store, the chunk stays in the buffer
    bad = aws_conf(d, f"    url {es.url}\n    region ap-northeast-2\n"
                      f"    access_key_id {KEY}\n    secret_access_key wrong")
    a = Agent(bad, env=ENV)
    a.start()
    wait_until(lambda: len(es.sig_bad) >= 3, what="the store refusing the retries")
    a.wait_log("403")
    a.stop()
    assert es.all_docs() == {}
    es.sig_bad.clear()
    good = aws_conf(d, f"    url {es.url}\n    region ap-northeast-2\n"
                       f"    access_key_id {KEY}\n    secret_access_key {SECRET}")
    p = oneshot(good)
    assert p.returncode == 0, p.stderr[-2000:]
    assert es.sig_bad == [], es.sig_bad
    docs = es.all_docs()["logstash-2024.01.02"]
    assert sorted(doc[1]["msg"] for doc in docs) == [f"m{i}" for i in range(5)], docs
    assert all(doc[1]["@log_name"] == "app.web" for doc in docs)
    methods = [r[0] for r in es.requests if "Authorization" in r[2] and
               r[2]["Authorization"].startswith("AWS4-HMAC-SHA256")]
    assert "GET" in methods and "POST" in methods, methods
    # the credentials' secret never reaches the log
    assert SECRET not in p.stderr and SECRET not in a.all_logs()


def _fake_sts(creds, seen):
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(n).decode())
            seen.append(form)
            exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            body = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>{creds[0]}</AccessKeyId><SecretAccessKey>{creds[1]}</SecretAccessKey>
<SessionToken>{creds[2]}</SessionToken><Expiration>{exp}</Expiration>
</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>""".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    lstest.on_cleanup(srv.shutdown)
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_web_identity_role_signs_with_the_session_token():
    _need_botocore()
    temp = ("ASIATEMPORARY0000001", "temp/secret", "session-token-" + "x" * 40)
    es = ESServer(sigv4=dict(key=temp[0], secret=temp[1], token=temp[2], region="eu-west-1",
                             service="es"))
    seen = []
    sts = _fake_sts(temp, seen)
    d = tmpdir()
    tok = write(os.path.join(d, "token"), "eyJ.oidc.token")
    log(d, [{"t": T0, "msg": "hello"}])
    c = aws_conf(d, f"    url {es.url}\n    region eu-west-1\n"
                    f"    assume_role_arn arn:aws:iam::123456789012:role/es-writer\n"
                    f"    assume_role_web_identity_token_file {tok}\n",
                 out="compression_level best_speed")   # the hash covers the gzip body as sent
    p = oneshot(c, env=dict(ENV, AWS_ENDPOINT_URL_STS=sts))
    assert p.returncode == 0, p.stderr[-2000:]
    assert es.sig_bad == [] and es.sig_ok >= 2, (es.sig_bad, es.sig_ok)
    (doc,) = es.all_docs()["logstash-2024.01.02"]
    assert doc[1]["msg"] == "hello"
    assert seen and seen[0]["Action"] == ["AssumeRoleWithWebIdentity"], seen
    assert seen[0]["RoleArn"] == ["arn:aws:iam::123456789012:role/es-writer"]
    assert seen[0]["RoleSessionName"] == ["fluentd"] and seen[0]["WebIdentityToken"] == ["eyJ.oidc.token"]
    assert "credentials from web-identity" in p.stderr, p.stderr[-2000:]


def test_opensearch_endpoint_serverless_service_and_env_credentials():
    _need_botocore()
    es = ESServer(version="2.11.0", sigv4=dict(key=KEY, secret=SECRET, region="us-east-2",
                                               service="aoss"))
    d = tmpdir()
    log(d, [{"t": T0, "msg": "os"}])
    # no keys in the section: the SDK's default chain (here the environment)
    c = aws_conf(d, f"    url {es.url}\n    region us-east-2\n    aws_service_name aoss\n",
                 plugin="opensearch")
    p = oneshot(c, env=dict(ENV, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET))
    assert p.returncode == 0, p.stderr[-2000:]
    assert es.sig_bad == [] and es.sig_ok >= 2, (es.sig_bad, es.sig_ok)
    (doc,) = es.all_docs()["logstash-2024.01.02"]
    assert doc[1]["msg"] == "os" and doc[2] == "<none>", doc   # no _type on OpenSearch 2


def test_endpoint_configuration_errors_name_the_line():
    d = tmpdir()
    c = aws_conf(d, "    url https://search-x.us-east-1.es.amazonaws.com/\n    region us-east-1")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "trailing slash" in p.stderr, p.stderr
    assert ".conf:" in p.stderr
    c = conf("<match a>\n  @type aws-elasticsearch-service\n  logstash_format true\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "`endpoint` require" in p.stderr and ".conf:1:" in p.stderr, p.stderr
    c = aws_conf(d, "    url https://search-x.us-east-1.es.amazonaws.com")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "region" in p.stderr, p.stderr
    # a real td-agent shape (v0.12 names, ENV in the endpoint) passes the dry run
    c = conf("""<match kubernetes.**>
   type "aws-elasticsearch-service"
   log_level info
   include_tag_key true
   logstash_format true
   buffer_chunk_limit 2M
   buffer_queue_limit 32
   flush_interval 5s
   max_retry_wait 30
   disable_retry_limit
   reload_connections false
   <endpoint>
     url "#{ENV['ES_URL']}"
     region "#{ENV['AWS_REGION']}"
     access_key_id "#{ENV['AWS_ACCESS_KEY_ID']}"
     secret_access_key "#{ENV['AWS_SECRET_ACCESS_KEY']}"
   </endpoint>
</match>
""")
    p = run(["-c", c, "--dry-run"], env=dict(ENV, ES_URL="https://search-x.eu-west-1.es.amazonaws.com",
                                             AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID=KEY,
                                             AWS_SECRET_ACCESS_KEY=SECRET))
    assert p.returncode == 0, p.stderr
