"""@type http output (fluentd's out_http) against a real HTTP server on 127.0.0.1: Python's
http.server (with its ssl module for TLS), which records every request. Bodies are read back
with Python's json and gzip modules and compared record by record with what was written to the
tailed file; the json_array body is also compared byte for byte with the form fluentd's
`"[#{chunk.read.chop}]"` gives."""
import base64, glob, gzip, http.server, json, os, ssl, subprocess, threading, time

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write


class Server:
    """Records (method, path, headers, body) of each request; answers with the next code of
    `codes` (then 200)."""

    def __init__(self, codes=(), tls=None, port=0):
        self.requests, self.codes, self.lock = [], list(codes), threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    code = outer.codes.pop(0) if outer.codes else 200
                    outer.requests.append((self.command, self.path, dict(self.headers), body,
                                           code))
                msg = b"no thanks" if code >= 300 else b"ok"
                self.send_response(code)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            do_POST = do_PUT = do_any

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)

    def ok(self):
        with self.lock:
            return [r for r in self.requests if r[4] < 300]


def lines_file(d, n, start=0):
    recs = [{"n": i, "msg": f"hello {i}", "u": "caf\u00e9"} for i in range(start, start + n)]
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")
    return recs


def http_conf(d, url, out_extra="", fmt="@type json", buffer_keys="tag", buffer_extra=""):
    return conf(f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/in.pos
  tag app.web
  read_from_head true
  <parse>
    @type json
  </parse>
</source>
<match app.**>
  @type http
  endpoint {url}
{out_extra}
  <format>
    {fmt}
  </format>
  <buffer {buffer_keys}>
    @type file
    path {d}/buf
    flush_interval 0.3
    retry_wait 0.3
    retry_max_interval 1
{buffer_extra}
  </buffer>
</match>
""", d)


def body_records(r):
    body = r[3]
    if r[2].get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    text = body.decode()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(l) for l in text.splitlines() if l]


def delivered(srv):
    return [rec for r in srv.ok() for rec in body_records(r)]


def test_ndjson_post_with_the_tag_in_the_endpoint():
    srv = Server()
    d = tmpdir()
    recs = lines_file(d, 50)
    a = Agent(http_conf(d, f"http://127.0.0.1:{srv.port}/logs/${{tag}}?x=1")).start()
    wait_until(lambda: len(delivered(srv)) >= 50, 20, what="50 records posted")
    time.sleep(0.5)
    a.stop()
    assert a.log().count("Status code 503 is going to be removed") == 1, a.log()
    r = srv.ok()[0]
    assert r[0] == "POST" and r[1] == "/logs/app.web?x=1", r[:2]
    assert r[2]["Content-Type"] == "application/x-ndjson", r[2]
    assert "Expect" not in r[2], r[2]
    assert delivered(srv) == recs


def test_json_array_gzip_put_headers_and_basic_auth():
    srv = Server()
    d = tmpdir()
    recs = lines_file(d, 30)
    a = Agent(http_conf(d, f"http://127.0.0.1:{srv.port}/put", out_extra="""
  http_method put
  json_array true
  compress gzip
  headers {"X-Static":"one","Content-Type":"ignored/by-fluentd"}
  headers_from_placeholders {"X-Tag":"t-${tag}","X-Part":"${tag[1]}"}
  retryable_response_codes [503, 429]
  <auth>
    method basic
    username alice
    password s3cr:et
  </auth>""")).start()
    wait_until(lambda: len(delivered(srv)) >= 30, 20, what="30 records put")
    a.stop()
    assert "Status code 503" not in a.log(), a.log()
    assert "s3cr:et" not in a.log()
    r = srv.ok()[0]
    h = r[2]
    assert r[0] == "PUT" and r[1] == "/put"
    assert h["Content-Type"] == "application/json" and h["Content-Encoding"] == "gzip", h
    assert h["X-Static"] == "one" and h["X-Tag"] == "t-app.web" and h["X-Part"] == "web", h
    assert base64.b64decode(h["Authorization"].split()[1]) == b"alice:s3cr:et", h
    assert delivered(srv) == recs
    # fluentd's body: each formatted line ("...\n") followed by "," but the last, in brackets
    text = gzip.decompress(r[3]).decode()
    lines = [json.dumps(x, separators=(",", ":"), ensure_ascii=False) + "\n"
             for x in body_records(r)]
    assert text == "[" + ",".join(lines) + "]", text[:200]


def test_retryable_answers_and_refused_connections_are_retried_nothing_lost():
    srv = Server(codes=[503, 503, 429])
    d = tmpdir()
    recs = lines_file(d, 20)
    a = Agent(http_conf(d, f"http://127.0.0.1:{srv.port}/r", out_extra="""
  retryable_response_codes 503,429""")).start()
    wait_until(lambda: len(delivered(srv)) >= 20, 30, what="delivery after 3 refusals")
    time.sleep(0.5)
    assert [r[4] for r in srv.requests][:4] == [503, 503, 429, 200]
    assert delivered(srv) == recs
    a.stop()
    # nothing listens yet: refused connections are retried, the chunk stays in the buffer, and
    # it is sent once a server is there
    port = lstest.free_port()
    write(a.config, lstest.read(a.config).replace(f":{srv.port}/r", f":{port}/r"))
    more = lines_file(d, 10, 20)
    a.start()
    a.wait_log(r"failed to flush chunk .*(Connection refused|Couldn't connect|Failed to connect)",
               20)
    assert glob.glob(os.path.join(d, "buf", "*.chunk")) or glob.glob(os.path.join(d, "buf", "*")), \
        "the chunk must stay buffered"
    srv2 = Server(port=port)
    wait_until(lambda: len(delivered(srv2)) >= 10, 30, what="the buffered chunk")
    time.sleep(0.5)
    a.stop()
    assert delivered(srv2) == more


def test_error_answers_unrecoverable_to_backup_or_logged_and_dropped():
    srv = Server(codes=[400])
    d = tmpdir()
    lines_file(d, 5)
    a = Agent(http_conf(d, f"http://127.0.0.1:{srv.port}/e")).start()
    a.wait_log("kept in", 20)
    time.sleep(1.0)
    a.stop()
    assert len(srv.requests) == 1 and srv.requests[0][4] == 400, srv.requests
    assert "unrecoverable error (POST http://127.0.0.1:%d/e: 400 Bad Request no thanks)" \
        % srv.port in a.log(), a.log()
    backups = glob.glob(os.path.join(d, "**", "backup", "**", "*"), recursive=True)
    assert [b for b in backups if os.path.isfile(b)], (backups, a.log())

    srv = Server(codes=[404])
    d = tmpdir()
    lines_file(d, 5)
    a = Agent(http_conf(d, f"http://127.0.0.1:{srv.port}/e",
                        out_extra="  error_response_as_unrecoverable false")).start()
    a.wait_log("got error response from 'Post|got error response from 'POST", 20)
    time.sleep(1.0)
    a.stop()
    assert len(srv.requests) == 1, srv.requests
    assert "404 Not Found no thanks" in a.log(), a.log()


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by it."""
    sh = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    ca_key, ca = f"{d}/ca.key", f"{d}/ca.crt"
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
       "-days", "2", "-subj", "/CN=out_http test CA")
    out = {}
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        key, csr, crt = f"{d}/{name}.key", f"{d}/{name}.csr", f"{d}/{name}.crt"
        e = write(f"{d}/{name}.ext", ext)
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
           f"/CN={name}")
        sh("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
           "-out", crt, "-days", "2", "-extfile", e)
        out[name] = (crt, key)
    # the client key with a passphrase, as tls_private_key_passphrase expects
    sh("openssl", "pkey", "-in", out["client"][1], "-aes256", "-passout", "pass:pw",
       "-out", f"{d}/client-enc.key")
    return ca, out["server"], out["client"][0], f"{d}/client-enc.key"


def test_tls_ca_client_certificate_and_verify_mode():
    d = tmpdir()
    ca, (scrt, skey), ccrt, ckey = make_certs(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(scrt, skey)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED            # the server checks the client
    srv = Server(tls=ctx)
    recs = lines_file(d, 10)
    a = Agent(http_conf(d, f"https://127.0.0.1:{srv.port}/tls", out_extra=f"""
  tls_ca_cert_path {ca}
  tls_client_cert_path {ccrt}
  tls_private_key_path {ckey}
  tls_private_key_passphrase pw""")).start()
    wait_until(lambda: len(delivered(srv)) >= 10, 30, what="10 records over mutual TLS")
    a.stop()
    assert delivered(srv) == recs

    # without the CA the server's certificate is refused and the chunk stays; verify_mode none
    # takes it (the server here does not ask for a client certificate)
    ctx2 = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx2.load_cert_chain(scrt, skey)
    srv2 = Server(tls=ctx2)
    d2 = tmpdir()
    recs2 = lines_file(d2, 5)
    a = Agent(http_conf(d2, f"https://127.0.0.1:{srv2.port}/v")).start()
    a.wait_log(r"certificate|SSL", 20)
    assert srv2.requests == []
    a.stop()
    write(a.config, lstest.read(a.config).replace("endpoint ", "tls_verify_mode none\n  endpoint "))
    a.start()
    wait_until(lambda: len(delivered(srv2)) >= 5, 30, what="records with tls_verify_mode none")
    a.stop()
    assert delivered(srv2) == recs2


def test_configuration_errors_name_the_line():
    d = tmpdir()
    cases = [
        ("json_array true", "@type csv\n    fields n", "json_array option could be used with json"),
        ("<auth>\n    method aws_sigv4\n  </auth>", "@type json", "aws_sigv4 is not supported"),
        ("tls_ca_cert_path /nonexistent/ca.pem", "@type json", "tls_ca_cert_path is wrong"),
        ("retryable_response_codes [503, \"x\"]", "@type json", "not an HTTP status code"),
        ("", "@type parquet", "can't determine Content-Type"),
    ]
    for extra, fmt, want in cases:
        url = "https://127.0.0.1:1/x" if "tls_" in extra else "http://127.0.0.1:1/x"
        cfg = http_conf(d, url, out_extra="  " + extra, fmt=fmt)
        p = run(["-c", cfg, "--dry-run"])
        assert p.returncode != 0 and want in p.stderr and "logship.conf:" in p.stderr, \
            (extra, p.stderr)


def test_conf_example_ships_an_nginx_log():
    """conf/nginx-http.conf as it is, pointed at the server through its #{ENV[...]} values."""
    srv = Server()
    d = tmpdir()
    log = write(os.path.join(d, "access.log"), "")
    env = dict(os.environ, NGINX_LOG=log, LOGSHIP_STATE_DIR=d, FLUSH_INTERVAL="0.3s",
               HTTP_ENDPOINT=f"http://127.0.0.1:{srv.port}/ingest")
    a = Agent(os.path.join(lstest.ROOT, "conf", "nginx-http.conf"), env=env, name="ex")
    a.dir = d
    a.start()
    a.wait_log("following tail of")
    write(log, "".join(
        f'192.0.2.{i} - - [05/Dec/2026:00:00:{i:02d} +0000] "GET /p/{i} HTTP/1.1" 200 {i} "-" '
        f'"curl/8"\n' for i in range(40)), "a")
    wait_until(lambda: len(delivered(srv)) >= 40, 30, what="40 nginx records")
    a.stop()
    got = delivered(srv)
    assert [g["path"] for g in got] == [f"/p/{i}" for i in range(40)], got[:3]
    assert got[0]["time"] == "2026-12-05T00:00:00+0000", got[0]
    r = srv.ok()[0]
    assert r[1] == "/ingest/nginx.access" and r[2]["X-Log-Tag"] == "nginx.access", r[:3]
