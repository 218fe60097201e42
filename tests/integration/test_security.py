"""Security: secrets stay secret, TLS is verified, names cannot escape their directory,
configuration permissions are checked, monitoring stays on loopback.

- A unique marker is configured as every kind of secret (rds password, aws_sec_key,
  password, userinfo in a URL) and logship runs with -vv while errors happen (an
  unreachable database, injected output failures, unknown parameters), monitor_agent's
  /metrics, /api/plugins.json and /api/config.json are scraped, --describe and --dry-run
  with a broken configuration next to the secret run: the marker must appear nowhere.
- TLS: an https endpoint with a self-signed certificate (python ssl server on 127.0.0.1)
  must be refused unless ssl_verify_peer false or the certificate is given as CA bundle
  (needs @type s3).
- Path traversal: a tag and a record value holding "../" used as ${tag} / ${key} in
  out_file and secondary_file paths cannot create anything outside the directory.
- A configuration holding secrets that every user can read is warned about; 0640 is not.
- monitor_agent listens on 127.0.0.1 unless bind says otherwise (checked in /proc/net/tcp).
"""
import glob, http.server, json, os, re, secrets, socket, ssl, subprocess, threading, time

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write
import relkit

MARK = "SeCrEt" + secrets.token_hex(6)


def _assert_no_marker(text, where):
    assert MARK not in text, f"secret marker found in {where}:\n" + \
        "\n".join(l for l in text.splitlines() if MARK in l)[:2000]


def _secret_conf(d, port):
    return f"""
<system>
  log_level trace
</system>
<source>
  @type monitor_agent
  @id mon
  port {port}
  include_config true
</source>
<source>
  @type rds_slowlog
  @id rds
  host 127.0.0.1
  port 1
  user logship
  password {MARK}
  tag rds
  state_file {d}/rds.state
  interval 1
</source>
<source>
  @type sample
  tag s
  rate 20
  sample {{"message":"hello"}}
</source>
<match **>
  @type fault
  @id out_f
  fail_times 3
  path {d}/out
  aws_sec_key {MARK}
  password "{MARK}"
  endpoint https://logship:{MARK}@example.com/
  <buffer>
    flush_interval 0.2
    retry_wait 0.1
  </buffer>
</match>
"""


def test_secrets_never_appear_in_logs_metrics_describe_or_errors():
    d = tmpdir()
    port = lstest.free_port()
    c = conf(_secret_conf(d, port), d)
    os.chmod(c, 0o600)
    a = Agent(c, args=["-vv"]).start()
    a.wait_log(r"rds.*(connect|Can't)", timeout=20)
    a.wait_log(r"retry succeeded", timeout=20)
    bodies = []
    for path in ("/metrics", "/api/plugins.json", "/api/plugins", "/api/config.json",
                 "/api/config", "/api/plugins.json?debug=1&with_config=true"):
        status, body = relkit.http_get(port, path)
        bodies.append(body)
        _assert_no_marker(body, f"monitor_agent {path} (HTTP {status})")
    assert any("out_f" in b for b in bodies), "monitor_agent answered nothing useful"
    a.signal(1)    # SIGHUP: reload logs the configuration again
    time.sleep(1.5)
    a.stop()
    _assert_no_marker(a.all_logs() + a.stdout(), "the agent's log")

    # --dry-run with errors next to (and in) the secret
    bad = [
        f'<source>\n  @type rds_slowlog\n  password "{MARK}\n  tag x\n</source>\n',        # unterminated
        f"<source>\n  @type rds_slowlog\n  password {MARK}\n  port {MARK}\n</source>\n",     # bad int
        f"<match **>\n  @type fault\n  aws_sec_key {MARK}\n  <buffer>\n  @type nope\n</match>\n",
        f"<match **>\n  @type null\n  password {MARK}\n</match\n",                           # bad close
    ]
    for i, text in enumerate(bad):
        p = run(["--dry-run", "-vv", "-c", conf(text, d, f"bad{i}.conf")])
        assert p.returncode != 0, f"bad{i}.conf was accepted"
        _assert_no_marker(p.stdout + p.stderr, f"--dry-run of bad{i}.conf")
    p = run(["--dry-run", "-vv", "-c", c])
    _assert_no_marker(p.stdout + p.stderr, "--dry-run of the good configuration")
    for name in ("rds_slowlog", "fault", "s3", "monitor_agent"):
        p = run(["--describe", name])
        _assert_no_marker(p.stdout + p.stderr, f"--describe {name}")


def test_s3_secret_never_appears_in_describe_and_errors():
    relkit.need_s3()
    d = tmpdir()
    c = conf(f"""
<source>
  @type sample
  tag s
  rate 20
</source>
<match **>
  @type s3
  aws_key_id AKIAEXAMPLE
  aws_sec_key {MARK}
  s3_bucket b
  s3_region us-east-1
  s3_endpoint http://127.0.0.1:1
  force_path_style true
  check_apikey_on_start false
  check_bucket false
  <buffer>
    @type file
    path {d}/buf
    flush_interval 0.5
    retry_wait 0.2
  </buffer>
</match>
""", d)
    os.chmod(c, 0o600)
    a = Agent(c, args=["-vv"]).start()
    time.sleep(4)
    a.stop()
    _assert_no_marker(a.all_logs(), "the agent's log with an unreachable S3 endpoint")
    for args in (["--describe", "s3"], ["--describe-md", "output:s3"], ["--dry-run", "-vv", "-c", c]):
        p = run(args)
        _assert_no_marker(p.stdout + p.stderr, " ".join(args))


# ---- TLS ----

def _self_signed(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return key, crt


class _S3ish(http.server.BaseHTTPRequestHandler):
    """Accepts any PUT/HEAD/GET like a permissive S3 (we only care whether TLS got through)."""
    hits = []

    def _ok(self, body=b""):
        self.hits.append((self.command, self.path))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(200)
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self):
        self._ok()

    def do_POST(self):
        self._ok()

    def do_GET(self):
        self._ok(b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
                 b'<IsTruncated>false</IsTruncated></ListBucketResult>')

    def do_HEAD(self):
        if "/b/" in self.path:      # object HEAD: not there yet
            self.hits.append((self.command, self.path))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._ok()

    def log_message(self, *a):
        pass


def _https_server(d):
    key, crt = _self_signed(d)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _S3ish)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    lstest.on_cleanup(srv.shutdown)
    return srv, crt


def _tls_run(d, port, extra):
    _S3ish.hits = []
    c = conf(f"""
<source>
  @type sample
  tag s
  size 3
  rate 3
</source>
<match **>
  @type s3
  aws_key_id AKIAEXAMPLE
  aws_sec_key abc
  s3_bucket b
  s3_region us-east-1
  s3_endpoint https://127.0.0.1:{port}
  force_path_style true
  check_apikey_on_start false
  check_bucket false
  check_object false
  {extra}
  <buffer>
    @type file
    path {d}/buf{secrets.token_hex(3)}
    flush_mode interval
    flush_interval 0.5
    retry_wait 0.5
  </buffer>
</match>
""", d, f"tls{secrets.token_hex(3)}.conf")
    a = Agent(c).start()
    time.sleep(4)
    a.stop()
    return a.all_logs(), list(_S3ish.hits)


def test_tls_verification_is_on_by_default():
    relkit.need_s3()
    d = tmpdir()
    srv, crt = _https_server(d)
    port = srv.server_address[1]
    log, hits = _tls_run(d, port, "")
    assert not [h for h in hits if h[0] == "PUT"], f"uploaded to a self-signed endpoint: {hits}"
    fails = [l for l in log.splitlines() if "failed to flush" in l]
    assert fails and re.search(r"certificate|SSL|TLS|verif", fails[0], re.I), \
        "no TLS verification error in the log:\n" + lstest.tail_text(log, 20)
    log, hits = _tls_run(d, port, "ssl_verify_peer false")
    assert [h for h in hits if h[0] == "PUT"], "ssl_verify_peer false did not upload:\n" + \
        lstest.tail_text(log, 20)
    log, hits = _tls_run(d, port, f"ssl_ca_bundle {crt}")
    assert [h for h in hits if h[0] == "PUT"], "the CA bundle was not used:\n" + \
        lstest.tail_text(log, 20)


# ---- path traversal ----

def _tree(d):
    out = set()
    for root, dirs, files in os.walk(d):
        for f in files + dirs:
            out.add(os.path.join(root, f))
    return out


def test_tag_and_record_values_cannot_escape_the_output_directory():
    base = tmpdir()
    d = os.path.join(base, "work")
    os.makedirs(d)
    outside_before = _tree(base) - _tree(d)
    c = conf(f"""
<source>
  @type sample
  tag ../../../esc
  size 5
  rate 50
  sample {{"host":"../../../../hostesc","message":"m"}}
</source>
<source>
  @type sample
  tag ok.fine
  size 5
  rate 50
  sample {{"host":"web1","message":"m"}}
</source>
<match **>
  @type file
  path {d}/out/${{tag}}/${{host}}/f
  <buffer tag,host>
    @type file
    path {d}/buf
    flush_mode interval
    flush_interval 0.3
    retry_max_times 0
  </buffer>
  <secondary>
    @type secondary_file
    directory {d}/sec/${{tag}}
    basename ${{host}}_dump
  </secondary>
</match>
""", d)
    a = Agent(c).start()
    wait_until(lambda: glob.glob(os.path.join(d, "out", "ok.fine", "web1", "*")), 20,
               what="the good tag delivered")
    time.sleep(2.0)
    a.stop()
    after = _tree(base) - _tree(d)
    escaped = sorted(after - outside_before)
    assert not escaped, f"files created outside {d}: {escaped}"
    for p in _tree(d):
        assert os.path.realpath(p).startswith(os.path.realpath(d) + "/"), p
    assert not glob.glob("/tmp/hostesc*") and not glob.glob("/esc*"), "escaped to / or /tmp"


# ---- configuration permissions ----

def test_world_readable_config_with_secrets_is_warned_about():
    d = tmpdir()
    text = f"""
<source>
  @type sample
  tag s
</source>
<match **>
  @type null
  password {MARK}
</match>
"""
    c = conf(text, d)
    os.chmod(c, 0o644)
    p = run(["--dry-run", "-c", c])
    assert "readable by every user" in p.stderr, p.stderr
    _assert_no_marker(p.stderr, "the permission warning")
    os.chmod(c, 0o640)
    p = run(["--dry-run", "-c", c])
    assert "readable by every user" not in p.stderr, p.stderr
    c2 = conf(text.replace(f"password {MARK}", ""), d, "nosecret.conf")
    os.chmod(c2, 0o644)
    p = run(["--dry-run", "-c", c2])
    assert "readable by every user" not in p.stderr, "warned about a config without secrets"


def test_world_readable_included_file_with_secrets_is_warned_about():
    d = tmpdir()
    inc = write(os.path.join(d, "secret.conf"), f"<match **>\n  @type null\n  password {MARK}\n</match>\n")
    os.chmod(inc, 0o644)
    c = conf(f"<source>\n  @type sample\n  tag s\n</source>\n@include {inc}\n", d)
    os.chmod(c, 0o600)
    p = run(["--dry-run", "-c", c])
    assert "readable by every user" in p.stderr and "secret.conf" in p.stderr, \
        "an @include'd file with a password, mode 0644, was not warned about:\n" + p.stderr
    _assert_no_marker(p.stderr, "the permission warning")


# ---- monitoring endpoint ----

def _listening(port):
    """Local addresses (hex ip, family) listening on port, from /proc/net/tcp{,6}."""
    out = []
    for fam in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/net/{fam}").read().splitlines()[1:]
        except OSError:
            continue
        for l in lines:
            f = l.split()
            ip, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":
                out.append((fam, ip))
    return out


def test_monitor_agent_binds_loopback_by_default():
    d = tmpdir()
    port = lstest.free_port()
    c = conf(f"<source>\n  @type monitor_agent\n  port {port}\n</source>\n"
             "<source>\n  @type sample\n  tag s\n</source>\n<match **>\n  @type null\n</match>\n", d)
    a = Agent(c).start()
    wait_until(lambda: _listening(port), 20, what="monitor_agent listening")
    ls = _listening(port)
    a.stop()
    assert ls == [("tcp", "0100007F")], f"monitor_agent listens on {ls}, not only 127.0.0.1"
