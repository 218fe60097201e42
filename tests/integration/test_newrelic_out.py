"""@type newrelic (newrelic-fluentd-output) against a stand-in for New Relic's Log API on
127.0.0.1 (POST /log/v1, a gzip'd JSON array of one payload, X-Insert-Key or X-License-Key):
records packaged as the plugin does (timestamp in milliseconds or the record's own, message or
log at the top), a payload over 1,000,000 gzip'd bytes split in halves, a failed payload
retried alone (the plugin drops it), and a 4xx kept in backup."""
import glob, gzip, http.server, json, os, random, threading

import lstest
from lstest import Agent, conf, run, tmpdir, wait_until, write


class LogAPI:
    def __init__(self, codes=()):
        self.posts, self.codes, self.lock = [], list(codes), threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    code = outer.codes.pop(0) if outer.codes else 202
                    outer.posts.append((self.path, dict(self.headers), len(raw),
                                        json.loads(gzip.decompress(raw)), code))
                msg = b'{"requestId":"x"}'
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

    def logs(self, ok_only=True):
        return [l for p in self.posts if not ok_only or p[4] < 300 for l in p[3][0]["logs"]]


def nr_conf(d, api, keys="api_key abc123", buffer="", mode="lazy"):
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
  @type newrelic
  {keys}
  base_uri http://127.0.0.1:{api.port}/log/v1
  <buffer>
    @type file
    path {d}/buf
    flush_mode {mode}
    retry_wait 0.2
    retry_max_interval 0.5
    {buffer}
  </buffer>
</match>
""", d)


def log(d, recs):
    write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")


def test_records_packaged_as_the_plugin_does():
    api = LogAPI()
    d = tmpdir()
    log(d, [{"t": 1704164645.25, "message": "a", "host": "h"},
            {"t": 1704164646, "log": "from docker", "message": "loses", "stream": "stdout"},
            {"t": 1704164647, "timestamp": 42, "x": 1},
            {"t": 1704164648}])
    p = run(["-c", nr_conf(d, api), "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, headers, _, body, _), = api.posts
    assert path == "/log/v1", path
    assert headers["X-Insert-Key"] == "abc123" and "X-License-Key" not in headers, headers
    assert headers["Content-Encoding"] == "gzip" and headers["X-Event-Source"] == "logs", headers
    assert body[0]["common"]["attributes"]["plugin"]["type"] == "logship", body
    logs = body[0]["logs"]
    assert logs == [
        {"timestamp": 1704164645250, "attributes": {"host": "h"}, "message": "a"},
        {"timestamp": 1704164646000, "attributes": {"stream": "stdout"}, "message": "from docker"},
        {"timestamp": 42, "attributes": {"timestamp": 42, "x": 1}},
    ], logs
    assert list(logs[0]) == ["timestamp", "attributes", "message"], logs[0]


def test_license_key_from_the_environment_and_key_errors():
    api = LogAPI()
    d = tmpdir()
    log(d, [{"t": 1704164645, "message": "a"}])
    env = dict(os.environ, NEW_RELIC_LICENSE_KEY="lic-1")
    p = run(["-c", nr_conf(d, api, keys=""), "--oneshot"], env=env, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert api.posts[0][1]["X-License-Key"] == "lic-1", api.posts[0][1]
    env.pop("NEW_RELIC_LICENSE_KEY")
    env.pop("NEW_RELIC_API_KEY", None)
    c = conf("<match a>\n  @type newrelic\n</match>\n")
    p = run(["-c", c, "--dry-run"], env=env)
    assert p.returncode != 0 and "'api_key' or 'license_key' parameter is required" in p.stderr \
        and ".conf:1:" in p.stderr, p.stderr


def test_big_payload_split_failed_payload_retried_alone_and_4xx_to_backup():
    # random messages: about 1.6 MB of gzip, so the payload is halved
    rnd = random.Random(7)
    api = LogAPI(codes=[202, 503])
    d = tmpdir()
    n = 400
    log(d, [{"t": 1704164645 + i % 3, "n": i,
             "message": "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                for _ in range(6000))} for i in range(n)])
    p = run(["-c", nr_conf(d, api, buffer="chunk_limit_size 64m"), "--oneshot"], timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert all(size <= 1000000 for _, _, size, _, _ in api.posts), [x[2] for x in api.posts]
    counts = [(len(b[0]["logs"]), code) for _, _, _, b, code in api.posts]
    # the second payload failed and was sent again alone: the first was not repeated
    assert len(counts) == 3 and counts[0] == (200, 202) and counts[1][1] == 503 and counts[2] == (counts[1][0], 202), counts
    ns = sorted(l["attributes"]["n"] for l in api.logs())
    assert ns == list(range(n)), (len(ns), len(set(ns)))
    api2 = LogAPI(codes=[403])
    d2 = tmpdir()
    log(d2, [{"t": 1704164645, "message": "x"}])
    a = Agent(nr_conf(d2, api2, mode="immediate")).start()
    try:
        wait_until(lambda: glob.glob(f"{d2}/buf/backup/**/*", recursive=True), what="backup")
    finally:
        a.stop()
    assert len(api2.posts) == 1


def test_plugin_buffer_defaults_flush_within_seconds():
    # the plugin's <buffer> defaults: memory, chunk key time, timekey 5 s, timekey_wait 0
    # (the generic ones, a day and 10 minutes, would hold the records far longer)
    api = LogAPI()
    d = tmpdir()
    c = conf(f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/pos
  read_from_head true
  tag app.web
  <parse>
    @type json
  </parse>
</source>
<match app.**>
  @type newrelic
  api_key k
  base_uri http://127.0.0.1:{api.port}/log/v1
</match>
""", d)
    log(d, [])
    a = Agent(c).start()
    try:
        a.wait_log(r"logship started")
        log(d, [{"message": "now"}])
        wait_until(lambda: api.posts, timeout=15, what="a post within a few timekeys of 5 s")
    finally:
        a.stop()
    assert [l["message"] for l in api.logs()] == ["now"], api.posts
