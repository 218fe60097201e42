"""A real S3 API for the tests: moto_server on 127.0.0.1 with IAM auth ON.

moto counts authenticated actions; with INITIAL_NO_AUTH_ACTION_COUNT=N the
first N actions are free and every later request is signature- and
permission-checked (botocore recomputes the SigV4 signature server-side).
The N setup actions create:

  - a limited IAM user whose only policy allows s3:* on the test bucket and
    its objects: its key/secret are what logship gets;
  - an admin IAM user (s3:* on everything) whose boto3 client is the
    independent verifier (logship is never needed to read back);
  - the test bucket, and a second bucket the limited user may not touch.

start() then checks that auth really is on (a request with a wrong secret
must fail), so a miscount of N cannot silently run the tests without auth.

    srv = S3Server.start()
    ... point logship at srv.endpoint / srv.bucket / srv.key / srv.secret ...
    srv.list_objects(); srv.get_object(key)
srv.stop() is registered with lstest.on_cleanup.
"""
import http.client, json, os, subprocess, sys, time

import lstest

ACCOUNT = "123456789012"
# Actions performed by _setup() before auth switches on. Keep in sync.
SETUP_ACTIONS = 11


# moto 5 verifies SigV4 over werkzeug's re-quoted URL, which leaves '/' (and ':' '@'...)
# raw in the query and '=' raw in the path, where AWS (and botocore, and logship)
# canonicalise them as %2F / %3D: any request with such a query value (ListObjects
# prefix=logs/) or key (dt=2024-01-01/) fails with SignatureDoesNotMatch, from boto3
# as well. The moto_server started here gets
# this sitecustomize, which canonicalises the query as AWS does before moto checks the
# signature (the signature is still verified).
MOTO_FIX = r"""
try:
    import urllib.parse as _up
    import moto.core.authorization as _A
    _orig = _A.ActionAuthenticatorMixin._authenticate_and_authorize_action
    def _fixed(self, cls, resource="*"):
        u = _up.urlsplit(self.uri)
        q = "&".join(_up.quote(k, safe="-_.~") + "=" + _up.quote(v, safe="-_.~")
                     for k, v in _up.parse_qsl(u.query, keep_blank_values=True))
        p = _up.quote(_up.unquote(u.path), safe="/-_.~")
        self.uri = _up.urlunsplit((u.scheme, u.netloc, p, q, u.fragment))
        return _orig(self, cls, resource)
    _A.ActionAuthenticatorMixin._authenticate_and_authorize_action = _fixed
except Exception:
    pass
"""


def _policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class S3Server:
    def __init__(self, bucket="logship-test", region="us-east-1"):
        self.bucket = bucket
        self.other_bucket = bucket + "-other"
        self.region = region
        self.port = None
        self.endpoint = None
        self.proc = None
        self.key = self.secret = None
        self.admin_key = self.admin_secret = None
        self.admin = None
        self.startup_seconds = None
        self.log_path = None

    @classmethod
    def start(cls, bucket="logship-test", region="us-east-1", timeout=30):
        srv = cls(bucket, region)
        srv._start(timeout)
        return srv

    # ---- lifecycle ----

    def _start(self, timeout):
        try:
            import boto3  # noqa: F401
            import moto  # noqa: F401
        except ImportError as e:
            raise lstest.Skip(f"moto/boto3 not available: {e}")
        t0 = time.time()
        self.port = lstest.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        d = lstest.tmpdir("ls-moto-")
        self.log_path = os.path.join(d, "moto.log")
        fixdir = os.path.join(d, "motofix")
        os.makedirs(fixdir, exist_ok=True)
        with open(os.path.join(fixdir, "sitecustomize.py"), "w") as fh:
            fh.write(MOTO_FIX)
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_ACTIONS), MOTO_PORT=str(self.port))
        env["PYTHONPATH"] = fixdir + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(k, None)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        lstest.on_cleanup(self.stop)
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"moto_server exited ({self.proc.returncode}):\n{self.log()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/moto-api/")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError(f"moto_server did not start in {timeout}s:\n{self.log()[-2000:]}")
            time.sleep(0.05)
        self._setup()
        self._check_auth_on()
        self.startup_seconds = time.time() - t0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ---- clients ----

    def client(self, service, key, secret, token=None, **cfg):
        import boto3
        from botocore.config import Config
        conf = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1, "mode": "standard"},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required", **cfg)
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                            config=conf)

    def s3_client(self, key=None, secret=None, token=None):
        """An S3 client as the limited user (default) or with the given credentials."""
        return self.client("s3", key or self.key, secret or self.secret, token)

    def _setup(self):
        iam = self.client("iam", "setup", "setup")
        # 1-4: the limited user, its key, its bucket-only policy, attached
        iam.create_user(UserName="logship")
        ak = iam.create_access_key(UserName="logship")["AccessKey"]
        self.key, self.secret = ak["AccessKeyId"], ak["SecretAccessKey"]
        pol = iam.create_policy(PolicyName="logship-bucket-only", PolicyDocument=_policy([{
            "Effect": "Allow", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"]}]))
        iam.attach_user_policy(UserName="logship", PolicyArn=pol["Policy"]["Arn"])
        # 5-8: the admin (verifier) user
        iam.create_user(UserName="verifier")
        ak = iam.create_access_key(UserName="verifier")["AccessKey"]
        self.admin_key, self.admin_secret = ak["AccessKeyId"], ak["SecretAccessKey"]
        pol = iam.create_policy(PolicyName="verifier-all", PolicyDocument=_policy([{
            "Effect": "Allow", "Action": ["s3:*", "iam:*", "sts:*"], "Resource": "*"}]))
        iam.attach_user_policy(UserName="verifier", PolicyArn=pol["Policy"]["Arn"])
        # 9-10: the buckets
        s3 = self.client("s3", "setup", "setup")
        for b in (self.bucket, self.other_bucket):
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=b)
            else:
                s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": self.region})
        # 11: the last free action; everything after this is authenticated
        s3.head_bucket(Bucket=self.bucket)
        self.admin = self.client("s3", self.admin_key, self.admin_secret)

    def _check_auth_on(self):
        from botocore.exceptions import ClientError
        bad = self.client("s3", self.key, "definitely-wrong")
        try:
            bad.list_objects_v2(Bucket=self.bucket)
        except ClientError:
            pass
        else:
            raise AssertionError("moto accepted a wrong secret: IAM auth is not on (SETUP_ACTIONS miscounted?)")
        self.admin.list_objects_v2(Bucket=self.bucket, MaxKeys=1)   # and the verifier does work

    # ---- verification (independent of logship) ----

    def list_objects(self, prefix=""):
        out = []
        for page in self.admin.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend({"Key": o["Key"], "Size": o["Size"], "ETag": o.get("ETag")} for o in page.get("Contents", []))
        return out

    def get_object(self, key):
        return self.admin.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def head_object(self, key):
        return self.admin.head_object(Bucket=self.bucket, Key=key)
