"""The out_s3 credentials chain, and the S3 layer against a signature-checking server.

$(BUILD)/tools/s3_cred_resolve runs s3_cred_resolve() and prints the source,
key id and a hash of the secret (never the secret). Fake IMDSv2, ECS and STS
endpoints are small http.server instances on 127.0.0.1 started here; the
fake STS verifies AssumeRole's SigV4 signature with botocore. The last tests
start moto with IAM auth (tests/lib/s3server.py), check that it really
rejects bad signatures and foreign buckets, and PUT objects with odd keys
through the logship signer and addressing.
"""
import hashlib, http.server, json, os, subprocess, sys, threading, time
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import lstest  # noqa: E402

TOOLS = os.environ.get("TOOLS", os.path.join(lstest.ROOT, "build", "tools"))
TOOL = os.path.join(TOOLS, "s3_cred_resolve")

AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
           "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
           "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
           "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED",
           "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION")


def _need_tool():
    if not os.access(TOOL, os.X_OK):
        raise lstest.Skip(f"{TOOL} not built")


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def resolve(args=(), env=None, home=None, expect_ok=True):
    """Run the tool in a clean AWS environment (no real ~/.aws, no IMDS unless asked)."""
    e = {k: v for k, v in os.environ.items() if k not in AWS_ENV}
    e["HOME"] = home or lstest.tmpdir("ls-home-")
    e["AWS_EC2_METADATA_DISABLED"] = "true"
    e.update(env or {})
    e = lstest.sanitizer_env(e)
    p = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=60, env=e)
    lstest.check_sanitizer(p.stderr, "s3_cred_resolve")
    out = dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)
    out["_stderr"] = p.stderr
    out["_rc"] = p.returncode
    if expect_ok:
        assert p.returncode == 0 and "source" in out, f"rc={p.returncode} out={p.stdout!r} err={p.stderr!r}"
    else:
        assert p.returncode != 0 and "error" in out, f"expected failure, got {p.stdout!r}"
    return out


class FakeServer:
    """A threaded HTTP server on 127.0.0.1; handler(req) -> (status, headers, body)."""

    def __init__(self, handler):
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _do(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in
                                                                              self.headers.items()}, "body": body}
                outer.requests.append(req)
                status, headers, data = handler(req)
                data = data.encode() if isinstance(data, str) else data
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _do

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()
        lstest.on_cleanup(self.stop)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


ROLE_CREDS = {"Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC",
              "AccessKeyId": "ASIAIMDSEXAMPLE", "SecretAccessKey": "imds/secret+key",
              "Token": "IQoJb3JpZ2luX2VjEH//////////token=="}


def imds_handler(v2_required=True, token_status=200, role="logship-role", expires_in=6 * 3600):
    state = {"token": "AQAEAFakeTokenabc123=="}

    def h(req):
        if req["method"] == "PUT" and req["path"] == "/latest/api/token":
            if token_status != 200:
                return token_status, {}, ""
            if req["headers"].get("x-aws-ec2-metadata-token-ttl-seconds") != "21600":
                return 400, {}, "missing ttl"
            return 200, {}, state["token"]
        if req["method"] != "GET":
            return 405, {}, ""
        if v2_required and req["headers"].get("x-aws-ec2-metadata-token") != state["token"]:
            return 401, {}, ""
        if req["path"] == "/latest/meta-data/iam/security-credentials/":
            return (200, {}, role + "\n") if role else (404, {}, "")
        if role and req["path"] == "/latest/meta-data/iam/security-credentials/" + role:
            d = dict(ROLE_CREDS, Expiration=iso(time.time() + expires_in))
            return 200, {"Content-Type": "text/plain"}, json.dumps(d, indent=2)
        return 404, {}, ""
    return h


# ---------------------------------------------------------------- static / env / files

def test_config_keys_and_no_secret_in_output():
    _need_tool()
    out = resolve(["--key-id", "AKIACONFIGEXAMPLE", "--secret", "cfg-secret-value", "--session-token", "tok"],
                  env={"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret"})
    assert out["source"] == "config" and out["key"] == "AKIACONFIGEXAMPLE" and out["token"] == "yes"
    assert out["secret_sha256"] == sha("cfg-secret-value")
    assert "credentials from config" in out["_stderr"]
    assert "cfg-secret-value" not in out["_stderr"] and "AKIACONFIGEXAMPLE" not in out["_stderr"]
    bad = resolve(["--key-id", "AKIAONLY"], expect_ok=False)
    assert "aws_sec_key" in bad["error"]


def test_env_precedence_over_shared_file():
    _need_tool()
    home = lstest.tmpdir("ls-home-")
    lstest.write(os.path.join(home, ".aws", "credentials"),
                 "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = filesecret\n")
    out = resolve(env={"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret",
                       "AWS_SESSION_TOKEN": "envtoken"}, home=home)
    assert (out["source"], out["key"], out["token"]) == ("env", "AKIAENV", "yes")
    assert out["secret_sha256"] == sha("envsecret")
    # without env the file in $HOME is used
    out = resolve(home=home)
    assert (out["source"], out["key"], out["token"]) == ("shared-file", "AKIAFILE", "no")
    assert out["secret_sha256"] == sha("filesecret")
    # half an env pair is an error, not a silent fall-through
    bad = resolve(env={"AWS_ACCESS_KEY_ID": "AKIAENV"}, home=home, expect_ok=False)
    assert "AWS_SECRET_ACCESS_KEY" in bad["error"]


def test_shared_file_profiles():
    _need_tool()
    d = lstest.tmpdir()
    cred = lstest.write(os.path.join(d, "creds"), """# comment
[default]
aws_access_key_id=AKIADEFAULT
aws_secret_access_key=defsecret

[prod]
; another comment
aws_access_key_id = AKIAPROD
aws_secret_access_key = prod/secret+x
aws_session_token = prodtoken
s3 =
    max_concurrent_requests = 20
""")
    conf = lstest.write(os.path.join(d, "config"), """[default]
region = ap-northeast-1
[profile cfgonly]
aws_access_key_id = AKIACFGONLY
aws_secret_access_key = cfgsecret
[profile regiononly]
region = us-west-2
""")
    env = {"AWS_SHARED_CREDENTIALS_FILE": cred, "AWS_CONFIG_FILE": conf}
    out = resolve(env=env)
    assert (out["source"], out["key"]) == ("shared-file", "AKIADEFAULT")
    out = resolve(env=dict(env, AWS_PROFILE="prod"))
    assert (out["key"], out["token"], out["secret_sha256"]) == ("AKIAPROD", "yes", sha("prod/secret+x"))
    out = resolve(env=dict(env, AWS_PROFILE="cfgonly"))   # from ~/.aws/config [profile cfgonly]
    assert out["key"] == "AKIACFGONLY"
    # fluent-plugin-s3 <shared_credentials path=... profile_name=...> and aws_profile
    out = resolve(["--shared", "--shared-path", cred, "--shared-profile", "prod"])
    assert out["key"] == "AKIAPROD"
    out = resolve(["--profile", "prod", "--shared-path", cred])
    assert out["key"] == "AKIAPROD"
    # a named profile that does not exist (or has no keys) is an error
    bad = resolve(env=dict(env, AWS_PROFILE="nope"), expect_ok=False)
    assert "nope" in bad["error"]
    bad = resolve(env=dict(env, AWS_PROFILE="regiononly"), expect_ok=False)
    assert "regiononly" in bad["error"]
    bad = resolve(["--shared", "--shared-path", os.path.join(d, "missing"), "--shared-profile", "x"],
                  env={"AWS_CONFIG_FILE": os.path.join(d, "missing2")}, expect_ok=False)
    assert "'x'" in bad["error"]


# ---------------------------------------------------------------- IMDS

def test_imds_v2_requires_token():
    _need_tool()
    srv = FakeServer(imds_handler())
    t0 = int(time.time())
    out = resolve(["--instance-profile", "--imds-endpoint", srv.url])
    assert (out["source"], out["key"], out["token"]) == ("imds", "ASIAIMDSEXAMPLE", "yes")
    assert out["secret_sha256"] == sha("imds/secret+key")
    assert out["token_sha256"] == sha(ROLE_CREDS["Token"])
    assert abs(int(out["expiration"]) - (t0 + 6 * 3600)) <= 5
    assert out["needs_refresh"] == "no"
    first = srv.requests[0]
    assert first["method"] == "PUT" and first["path"] == "/latest/api/token"
    assert all(r["headers"].get("x-aws-ec2-metadata-token") for r in srv.requests[1:])
    assert [r["path"] for r in srv.requests[1:]] == ["/latest/meta-data/iam/security-credentials/",
                                                     "/latest/meta-data/iam/security-credentials/logship-role"]
    # the default chain reaches IMDS via AWS_EC2_METADATA_SERVICE_ENDPOINT when nothing else is configured
    out = resolve(env={"AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": srv.url + "/"})
    assert out["source"] == "imds"


def test_imds_refresh_window_and_failures():
    _need_tool()
    # credentials expiring within 15 minutes must be reported as needing refresh
    srv = FakeServer(imds_handler(expires_in=600))
    out = resolve(["--instance-profile", "--imds-endpoint", srv.url])
    assert out["needs_refresh"] == "yes"
    # token PUT refused with 403 -> IMDSv1 fallback (botocore's behaviour)
    srv1 = FakeServer(imds_handler(v2_required=False, token_status=403))
    out = resolve(["--instance-profile", "--imds-endpoint", srv1.url])
    assert out["source"] == "imds"
    assert not any(r["headers"].get("x-aws-ec2-metadata-token") for r in srv1.requests)
    # 400 on the token PUT is an error, not a fallback
    srv2 = FakeServer(imds_handler(token_status=400))
    bad = resolve(["--instance-profile", "--imds-endpoint", srv2.url], expect_ok=False)
    assert "HTTP 400" in bad["error"]
    # no role attached
    srv3 = FakeServer(imds_handler(role=None))
    bad = resolve(["--instance-profile", "--imds-endpoint", srv3.url], expect_ok=False)
    assert "no IAM role" in bad["error"]
    # retries: nothing listening -> error after 1 + retries attempts, quickly
    t = time.time()
    bad = resolve(["--instance-profile", "--imds-endpoint", f"http://127.0.0.1:{lstest.free_port()}",
                   "--imds-retries", "2", "--imds-timeout-ms", "300"], expect_ok=False)
    assert time.time() - t < 10
    assert "latest/api/token" in bad["error"], bad


# ---------------------------------------------------------------- ECS

def test_ecs_container_credentials():
    _need_tool()
    creds = {"AccessKeyId": "ASIAECS", "SecretAccessKey": "ecs-secret", "Token": "ecs-token",
             "Expiration": iso(time.time() + 3600)}

    def h(req):
        if req["path"] != "/v2/credentials/abc" or req["headers"].get("authorization") != "Bearer s3cr3t":
            return 403, {}, "no"
        return 200, {"Content-Type": "application/json"}, json.dumps(creds)
    srv = FakeServer(h)
    out = resolve(env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/v2/credentials/abc",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer s3cr3t"})
    assert (out["source"], out["key"], out["token"]) == ("ecs", "ASIAECS", "yes")
    tokfile = lstest.write(os.path.join(lstest.tmpdir(), "tok"), "Bearer s3cr3t\n")
    out = resolve(env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/v2/credentials/abc",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokfile})
    assert out["source"] == "ecs"
    bad = resolve(env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/v2/credentials/abc",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"}, expect_ok=False)
    assert "HTTP 403" in bad["error"]
    # plain http to a non-loopback host is refused (credentials would cross the network in clear)
    bad = resolve(env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.1.2.3/creds"}, expect_ok=False)
    assert "FULL_URI" in bad["error"]


# ---------------------------------------------------------------- STS

def sts_xml(action, key, secret, token, exp):
    return (f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{action}Result>'
            f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken><Expiration>{iso(exp)}</Expiration></Credentials>"
            f"</{action}Result><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>")


def test_web_identity_token_file():
    _need_tool()
    d = lstest.tmpdir()
    tokfile = lstest.write(os.path.join(d, "token"), "eyJhbGciOiJSUzI1NiJ9.payload.sig\n")

    def h(req):
        f = {k: v[0] for k, v in parse_qs(req["body"].decode(), keep_blank_values=True).items()}
        if (req["method"] != "POST" or f.get("Action") != "AssumeRoleWithWebIdentity"
                or f.get("WebIdentityToken") != "eyJhbGciOiJSUzI1NiJ9.payload.sig"
                or f.get("RoleArn") != "arn:aws:iam::123456789012:role/irsa" or "authorization" in req["headers"]):
            return 400, {}, ("<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad</Message></Error>"
                             "</ErrorResponse>")
        return 200, {"Content-Type": "text/xml"}, sts_xml("AssumeRoleWithWebIdentity", "ASIAWEB", "web/secret",
                                                           "webtoken", time.time() + 3600)
    srv = FakeServer(h)
    out = resolve(env={"AWS_WEB_IDENTITY_TOKEN_FILE": tokfile, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa",
                       "AWS_ROLE_SESSION_NAME": "sess-1", "AWS_ENDPOINT_URL_STS": srv.url})
    assert (out["source"], out["key"], out["secret_sha256"]) == ("web-identity", "ASIAWEB", sha("web/secret"))
    form = parse_qs(srv.requests[-1]["body"].decode())
    assert form["RoleSessionName"] == ["sess-1"] and form["Version"] == ["2011-06-15"]
    # the explicit <web_identity_credentials> form
    out = resolve(["--web-identity", "--web-role-arn", "arn:aws:iam::123456789012:role/irsa", "--web-token-file",
                   tokfile, "--sts-endpoint", srv.url])
    assert out["source"] == "web-identity"
    # an STS error is reported with its code
    bad = resolve(["--web-identity", "--web-role-arn", "arn:aws:iam::123456789012:role/other", "--web-token-file",
                   tokfile, "--sts-endpoint", srv.url], expect_ok=False)
    assert "InvalidIdentityToken" in bad["error"]


def test_assume_role_signed_with_base_credentials():
    """The fake STS recomputes the SigV4 signature with botocore and the base secret."""
    _need_tool()
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    base_secret = "base/secret+KEY"
    seen = {}

    def h(req):
        authz = req["headers"].get("authorization", "")
        signed = authz.split("SignedHeaders=")[1].split(",")[0].split(";") if "SignedHeaders=" in authz else []
        hdrs = {k: v for k, v in req["headers"].items() if k in signed}
        areq = AWSRequest(method="POST", url=f"http://{req['headers']['host']}{req['path']}", data=req["body"],
                          headers=hdrs)
        areq.context["timestamp"] = req["headers"].get("x-amz-date", "")
        auth = SigV4Auth(Credentials("AKIABASE", base_secret, req["headers"].get("x-amz-security-token")), "sts",
                         "ap-northeast-1")
        cr = auth.canonical_request(areq)
        want = auth.signature(auth.string_to_sign(areq, cr), areq)
        seen["ok"] = authz.endswith("Signature=" + want) and "/ap-northeast-1/sts/aws4_request" in authz
        seen["form"] = {k: v[0] for k, v in parse_qs(req["body"].decode()).items()}
        if not seen["ok"]:
            return 403, {}, ("<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>sig</Message></Error>"
                             "</ErrorResponse>")
        if seen["form"].get("RoleArn") != "arn:aws:iam::123456789012:role/logs":
            return 403, {}, ("<ErrorResponse><Error><Code>AccessDenied</Code><Message>not allowed</Message>"
                             "</Error></ErrorResponse>")
        # 600 s left: clearly inside the 15-minute refresh window (900 s sat on its edge)
        return 200, {}, sts_xml("AssumeRole", "ASIAASSUMED", "assumed-secret", "assumedtoken", time.time() + 600)
    srv = FakeServer(h)
    args = ["--key-id", "AKIABASE", "--secret", base_secret, "--assume-role-arn", "arn:aws:iam::123456789012:role/logs",
            "--assume-session-name", "logship-test", "--assume-external-id", "ext-123", "--assume-duration", "900",
            "--assume-policy", '{"Version":"2012-10-17"}', "--sts-region", "ap-northeast-1", "--sts-endpoint", srv.url]
    out = resolve(args)
    assert seen["ok"], "signature did not verify"
    assert (out["source"], out["key"], out["token"]) == ("assume-role", "ASIAASSUMED", "yes")
    assert out["needs_refresh"] == "yes"    # 600 s lifetime is inside the 15 min refresh window
    assert seen["form"] == {"Action": "AssumeRole", "Version": "2011-06-15",
                            "RoleArn": "arn:aws:iam::123456789012:role/logs", "RoleSessionName": "logship-test",
                            "DurationSeconds": "900", "ExternalId": "ext-123", "Policy": '{"Version":"2012-10-17"}'}
    assert "with base credentials from config" in out["_stderr"]
    # a session-token base (env) is signed too, and a denial carries the STS error code
    out = resolve(args[4:], env={"AWS_ACCESS_KEY_ID": "AKIABASE", "AWS_SECRET_ACCESS_KEY": base_secret,
                                 "AWS_SESSION_TOKEN": "basetoken"})
    assert out["source"] == "assume-role" and seen["ok"]
    bad = resolve(["--key-id", "AKIABASE", "--secret", base_secret, "--assume-role-arn", "arn:aws:iam::1:role/x",
                   "--sts-region", "ap-northeast-1", "--sts-endpoint", srv.url], expect_ok=False)
    assert "AccessDenied" in bad["error"]
    bad = resolve(["--key-id", "AKIABASE", "--secret", "wrong", "--assume-role-arn", "arn:aws:iam::1:role/x",
                   "--sts-region", "ap-northeast-1", "--sts-endpoint", srv.url], expect_ok=False)
    assert "SignatureDoesNotMatch" in bad["error"]


# ---------------------------------------------------------------- against moto with IAM auth

def test_moto_rejects_bad_signature_and_other_bucket():
    from botocore.exceptions import ClientError
    from s3server import S3Server
    srv = S3Server.start()
    print(f"  moto startup (process + IAM setup + auth check): {srv.startup_seconds:.2f}s")
    ok = srv.s3_client()
    ok.put_object(Bucket=srv.bucket, Key="probe", Body=b"x")
    assert srv.get_object("probe") == b"x"
    try:
        srv.s3_client(secret="wrong-secret").put_object(Bucket=srv.bucket, Key="y", Body=b"y")
        raise AssertionError("a wrong secret was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    try:
        ok.put_object(Bucket=srv.other_bucket, Key="y", Body=b"y")
        raise AssertionError("the limited user wrote to another bucket")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", e.response
    assert [o["Key"] for o in srv.list_objects()] == ["probe"]


def test_put_through_logship_signer_to_moto():
    """s3_addr + SigV4 + libcurl PUT odd keys; moto verifies each signature; boto3 reads back.

    moto's server-side check mis-handles some keys (it recomputes the
    signature from the decoded path), so boto3 itself gets
    SignatureDoesNotMatch for them; the assertion is parity with boto3 for
    every key, and success for the keys moto can verify. Exact signing of
    the awkward keys is covered byte-for-byte by test_sigv4_botocore.py.
    """
    _need_tool()
    from botocore.exceptions import ClientError
    from s3server import S3Server
    srv = S3Server.start()
    boto = srv.s3_client()
    keys = ["plain.txt", "a b/c d.log", "tilde~/-._", "dbl//slash", "./dot/../seg", "2024/01/02/host-1_0.gz",
            "日本語/ログ.gz", "x+y=z&w", "pct%41/100%", "paren(1)!*'", "semi;colon,comma:at@dollar$"]
    stored = []
    for i, k in enumerate(keys):
        try:
            boto.put_object(Bucket=srv.bucket, Key="boto/" + k, Body=b"b")
            boto_ok = True
        except ClientError as e:
            assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
            boto_ok = False
        data = f"line {i} for {k}\n"
        out = resolve(["--key-id", srv.key, "--secret", srv.secret, "--put", srv.endpoint, srv.bucket, k, data])
        ours_ok = out.get("status") == "200"
        assert ours_ok == boto_ok, f"{k!r}: boto3 ok={boto_ok}, logship {out}"
        if ours_ok:
            assert srv.get_object(k) == data.encode(), k
            stored.append(k)
        else:
            assert out.get("error_code") == "SignatureDoesNotMatch", out
    assert len(stored) >= 6, stored
    assert sorted(o["Key"] for o in srv.list_objects() if not o["Key"].startswith("boto/")) == sorted(stored)
    print(f"  {len(stored)}/{len(keys)} keys stored through the logship signer (rest: moto limitation, same as boto3)")
    # rejected: another bucket (AccessDenied) and a wrong secret (SignatureDoesNotMatch), parsed from the XML
    out = resolve(["--key-id", srv.key, "--secret", srv.secret, "--put", srv.endpoint, srv.other_bucket, "k", "d"])
    assert (out.get("status"), out.get("error_code")) == ("403", "AccessDenied"), out
    out = resolve(["--key-id", srv.key, "--secret", "nope", "--put", srv.endpoint, srv.bucket, "k", "d"])
    assert (out.get("status"), out.get("error_code")) == ("403", "SignatureDoesNotMatch"), out
    assert "k" not in [o["Key"] for o in srv.list_objects()]
