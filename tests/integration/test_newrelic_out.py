"""@type newrelic (newrelic-fluentd-output) against a stand-in for New Relic's Log API on
127.0.0.1 (POST /log/v1, a gzip'd JSON array of one payload, X-Insert-Key or X-License-Key):
records packaged as the plugin does (timestamp in milliseconds or the record's own, message or
log at the top), a payload over 1,000,000 gzip'd bytes split in halves, a failed payload
retried alone (the plugin drops it), and a 4xx kept in backup."""
import glob, gzip, json, os, random

from intake import Intake, append_json as log, json_log_source
from lstest import Agent, conf, run, tmpdir, wait_until


class LogAPI(Intake):
    """New Relic's Log API: bodies are gzip'd JSON; answers 202 unless told otherwise"""

    def __init__(self, codes=()):
        super().__init__([(c, '{"requestId":"x"}') for c in codes], (202, '{"requestId":"x"}'))

    def logs(self, ok_only=True):
        return [l for p in self.posts if not ok_only or p[3] < 300
                for l in json.loads(gzip.decompress(p[2]))[0]["logs"]]

    def body(self, i):
        return json.loads(gzip.decompress(self.posts[i][2]))


def nr_conf(d, api, keys="api_key abc123", buffer="", mode="lazy"):
    return conf(json_log_source(d) + f"""
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


def test_records_packaged_as_the_plugin_does():
    api = LogAPI()
    d = tmpdir()
    log(d, [{"t": 1704164645.25, "message": "a", "host": "h"},
            {"t": 1704164646, "log": "from docker", "message": "loses", "stream": "stdout"},
            {"t": 1704164647, "timestamp": 42, "x": 1},
            {"t": 1704164648}])
    p = run(["-c", nr_conf(d, api), "--oneshot"], timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, headers, _, _), = api.posts
    body = api.body(0)
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
    assert all(len(raw) <= 1000000 for _, _, raw, _ in api.posts), [len(x[2]) for x in api.posts]
    counts = [(len(api.body(i)[0]["logs"]), p[3]) for i, p in enumerate(api.posts)]
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
    c = conf(json_log_source(d, time_key="none", time_type="string") + f"""
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
