"""@type loki (Grafana's fluent-plugin-grafana-loki) against a stand-in for Loki's push API
on 127.0.0.1 (POST /loki/api/v1/push, JSON streams; Loki is not in Debian 12): stream labels
from <label> and extra_labels, the line in key_value and json forms, nanosecond times in
order, tenant and auth headers, and the answers (429 retried, other 4xx kept in backup where
the plugin drops the chunk)."""
import base64, glob, gzip, http.server, json, os, threading

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

ENV = dict(os.environ, TZ="UTC")


class Loki:
    def __init__(self, codes=()):
        self.pushes, self.codes, self.lock = [], list(codes), threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with outer.lock:
                    code = outer.codes.pop(0) if outer.codes else 204
                    if code < 300:
                        gz = self.headers.get("Content-Encoding") == "gzip"
                        body = gzip.decompress(raw) if gz else raw
                        outer.pushes.append((self.path, dict(self.headers), json.loads(body)))
                msg = b"" if code == 204 else b"entry too far behind"
                self.send_response(code)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)


def loki_conf(d, loki, out, keys="", buffer_extra=""):
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
  @type loki
  url {loki.url}
  {out}
  <buffer {keys}>
    @type file
    path {d}/buf
    flush_mode immediate
    retry_wait 0.2
    retry_max_interval 0.5
    {buffer_extra}
  </buffer>
</match>
""", d)


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def test_labels_key_value_lines_order_tenant_and_auth():
    loki = Loki()
    d = tmpdir()
    log(d, [{"t": 1704164645.5, "app": "web", "k8s": {"pod": "p-1"}, "msg": "b c", "eq": "x=y",
             "q": 'say "hi"', "n": 3, "drop": 1},
            {"t": 1704164645.25, "app": "web", "k8s": {"pod": "p-1"}, "msg": "first"},
            {"t": 1704164646, "app": "db", "k8s": {"pod": "p-2"}, "msg": "other", "n": None}])
    c = loki_conf(d, loki, """username u
  password p
  tenant team-${tag}
  extra_labels {"env":"prod"}
  remove_keys drop
  <label>
    app
    pod_name $.k8s.pod
  </label>""", keys="tag")
    p = run(["-c", c, "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, headers, body), = loki.pushes
    assert path == "/loki/api/v1/push"
    assert headers["X-Scope-OrgID"] == "team-app.web", headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    streams = body["streams"]
    assert [s["stream"] for s in streams] == [
        {"app": "web", "pod_name": "p-1", "env": "prod"},
        {"app": "db", "pod_name": "p-2", "env": "prod"}], streams
    # entries in time order, nanoseconds as strings; key=value with Ruby's to_s, quoting and
    # escaping as the plugin writes them; the label fields are gone from the line
    assert streams[0]["values"] == [
        ["1704164645250000000", "k8s={} msg=first"],
        ["1704164645500000000", 'k8s={} msg="b c" eq="x=y" q="say \\"hi\\"" n=3']], streams
    assert streams[1]["values"] == [["1704164646000000000", "k8s={} msg=other n="]], streams


def test_json_lines_drop_single_key_and_gzip():
    loki = Loki()
    d = tmpdir()
    log(d, [{"t": 1704164645, "msg": "only"}, {"t": 1704164646, "a": 1, "b": [1, 2]}])
    p = run(["-c", loki_conf(d, loki, "line_format json\n  drop_single_key true\n"
                             "  compress gzip", buffer_extra="flush_thread_count 2"),
             "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    (_, headers, body), = loki.pushes
    assert headers["Content-Encoding"] == "gzip"
    # two flush threads: the plugin's fluentd_thread label keeps their streams apart
    assert body == {"streams": [{"stream": {"fluentd_thread": "flush_thread_0"}, "values": [
        ["1704164645000000000", "only"], ["1704164646000000000", '{"a":1,"b":[1,2]}']]}]}, body


def test_429_retried_and_400_kept_in_backup():
    loki = Loki(codes=[429])
    d = tmpdir()
    log(d, [{"t": 1704164645, "msg": "x"}])
    p = run(["-c", loki_conf(d, loki, ""), "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0 and len(loki.pushes) == 1, p.stderr[-2000:]
    loki2 = Loki(codes=[400])
    d2 = tmpdir()
    log(d2, [{"t": 1704164645, "msg": "y"}])
    a = Agent(loki_conf(d2, loki2, ""), env=ENV).start()
    try:
        wait_until(lambda: glob.glob(f"{d2}/buf/backup/**/*", recursive=True), what="backup")
    finally:
        a.stop()
    assert loki2.pushes == [] and "entry too far behind" in a.log(), a.log()[-2000:]
    c = conf("<match a>\n  @type loki\n  url ftp://x\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "URL parameter must have HTTP/HTTPS scheme" in p.stderr
