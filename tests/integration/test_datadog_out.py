"""@type datadog (fluent-plugin-datadog over HTTP) against a stand-in for Datadog's log
intake on 127.0.0.1 (POST /api/v2/logs, a gzip'd JSON array, DD-API-KEY): the records
enriched as the plugin does (ddsource, ddtags with container tags, service, hostname,
@timestamp), batches of 500, a failed batch retried alone, and a 4xx kept in backup where the
plugin drops it."""
import glob, gzip, http.server, json, os, threading

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write

ENV = dict(os.environ, TZ="UTC")


class Intake:
    def __init__(self, codes=()):
        self.posts, self.codes, self.lock = [], list(codes), threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    code = outer.codes.pop(0) if outer.codes else 202
                    body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" \
                        else raw
                    outer.posts.append((self.path, dict(self.headers), json.loads(body), code))
                msg = b"{}"
                self.send_response(code)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)

    def ok(self):
        return [p for p in self.posts if p[3] < 300]


def dd_conf(d, dd, out="", mode="immediate"):
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
  @type datadog
  api_key abc123
  host 127.0.0.1
  use_ssl false
  port {dd.port}
  {out}
  <buffer>
    @type file
    path {d}/buf
    flush_mode {mode}
    retry_wait 0.2
    retry_max_interval 0.5
  </buffer>
</match>
""", d)


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def test_enrichment_container_tags_and_headers():
    dd = Intake()
    d = tmpdir()
    log(d, [{"t": 1704164645.25, "msg": "a",
             "kubernetes": {"pod_name": "p1", "namespace_name": "ns", "container_name": "c"},
             "docker": {"container_id": "abc"}},
            {"t": 1704164646, "msg": "b", "service": "mine", "@timestamp": "kept",
             "ddtags": "x:y", "kubernetes": {"pod_name": "p2"}}])
    c = dd_conf(d, dd, """dd_source nginx
  dd_tags env:prod
  service web
  dd_hostname host-1
  include_tag_key true
  delete_extracted_tag_attributes true""")
    p = run(["-c", c, "--oneshot"], env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, headers, events, _), = dd.posts
    assert path == "/api/v2/logs" and headers["DD-API-KEY"] == "abc123", headers
    assert headers["Content-Encoding"] == "gzip" and headers["DD-EVP-ORIGIN"] == "fluent"
    assert list(events[0])[-1] == "@timestamp", events[0]
    assert events[0] == {"msg": "a", "ddsource": "nginx",
                         "ddtags": "env:prod,container_name:c,kube_namespace:ns,pod_name:p1,"
                                   "container_id:abc",
                         "service": "web", "hostname": "host-1", "tag": "app.web",
                         "@timestamp": "2024-01-02T03:04:05.250Z"}, events[0]
    assert events[1] == {"msg": "b", "service": "mine", "@timestamp": "kept",
                         "ddtags": "x:y,pod_name:p2", "ddsource": "nginx",
                         "hostname": "host-1", "tag": "app.web"}, events[1]


def test_batches_of_500_a_failed_batch_retried_alone_and_4xx_to_backup():
    dd = Intake(codes=[202, 503])
    d = tmpdir()
    log(d, [{"t": 1704164645 + i, "n": i} for i in range(1200)])
    p = run(["-c", dd_conf(d, dd, "use_compression false", mode="lazy"), "--oneshot"], env=ENV,
            timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    sizes = [(len(p_[2]), p_[3]) for p_ in dd.posts]
    assert sizes == [(500, 202), (500, 503), (500, 202), (200, 202)], sizes
    ns = sorted(e["n"] for p_ in dd.ok() for e in p_[2])
    assert ns == list(range(1200)), len(ns)
    dd2 = Intake(codes=[403])
    d2 = tmpdir()
    log(d2, [{"t": 1704164645, "n": 1}])
    a = Agent(dd_conf(d2, dd2), env=ENV).start()
    try:
        wait_until(lambda: glob.glob(f"{d2}/buf/backup/**/*", recursive=True), what="backup")
    finally:
        a.stop()
    assert len(dd2.posts) == 1
    c = conf("<match a>\n  @type datadog\n  api_key k\n  use_http false\n</match>\n")
    p = run(["-c", c, "--dry-run"])
    assert p.returncode != 0 and "use_http false" in p.stderr and ".conf:4:" in p.stderr
