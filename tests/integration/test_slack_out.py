"""@type slack (fluent-plugin-slack) against a stand-in for Slack on 127.0.0.1: an Incoming
Webhook (JSON with &, < and > escaped), the Web API's chat.postMessage (a form with the token)
and Slackbot (the text, the channel in the URL); messages, channels, titles and colors as the
plugin builds them, the mixin's time and tag, and a refused payload retried alone or kept."""
import glob, json, os, re, urllib.parse

from intake import Intake, append_json as log, json_log_source
from lstest import Agent, conf, run, tmpdir, wait_until


class Slack(Intake):
    """Slack: "ok" from a webhook or Slackbot, {"ok":true} from chat.postMessage"""

    def __init__(self, answers=()):
        super().__init__([(c, b if b is not None else "ok") for c, b in answers],
                         lambda path: (200, '{"ok":true}' if "chat.postMessage" in path
                                       else "ok"))

    @property
    def sent(self):
        return [(p, h, raw.decode(), code) for p, h, raw, code in self.posts]


def slack_conf(d, params, buffer="", tag="app.web"):
    return conf(json_log_source(d, tag) + f"""
<match app.**>
  @type slack
{params}
  <buffer>
    @type file
    path {d}/buf
    retry_wait 0.2
    retry_max_interval 0.5
{buffer}
  </buffer>
</match>
""", d)


ENV = dict(os.environ, TZ="UTC")


def test_webhook_plain_messages_with_time_and_tag_and_escaping():
    s = Slack()
    d = tmpdir()
    log(d, [{"t": 1704164645, "message": "disk <full> & more", "level": "error"},
            {"t": 1704164706, "message": "ok", "level": "info"},
            {"t": 1704164707, "level": "no message key"}])
    c = slack_conf(d, f"""  webhook_url {s.url}/services/T/B/x
  channel alerts
  username bot
  icon_emoji :ghost:
  message "[%s] %s %s"
  message_keys level,time,message""")
    p = run(["-c", c, "--oneshot"], env=ENV)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, headers, body, _), = s.sent
    assert path == "/services/T/B/x", path
    assert "&lt;full&gt; &amp; more" in body and "<" not in body, body
    payload = json.loads(body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert payload == {"text": "[error] 03:04:05 disk <full> & more\n[info] 03:05:06 ok\n"
                               "[no message key] 03:05:07 \n",
                       "channel": "#alerts", "username": "bot", "icon_emoji": ":ghost:",
                       "mrkdwn": True, "link_names": True}, payload
    assert list(payload) == ["text", "channel", "username", "icon_emoji", "mrkdwn",
                             "link_names"], payload
    assert "the specified key 'message' not found" in p.stderr, p.stderr


def test_channel_keys_title_per_tag_and_color():
    s = Slack()
    d = tmpdir()
    log(d, [{"t": 1704164645, "message": "a", "room": "ops", "host": "h1"},
            {"t": 1704164646, "message": "b", "room": "dev", "host": "h2"},
            {"t": 1704164647, "message": "c", "room": "ops", "host": "h3"}])
    c = slack_conf(d, f"""  webhook_url {s.url}/hook
  channel %s
  channel_keys room
  title %s alert
  title_keys host
  color danger
  mrkdwn false""")
    p = run(["-c", c, "--oneshot"], env=ENV)
    assert p.returncode == 0, p.stderr[-2000:]
    payloads = [json.loads(b) for _, _, b, _ in s.sent]
    assert payloads == [
        {"attachments": [{"fallback": "h1 alert", "fields": [{"title": "h1 alert",
                                                            "value": "a\nc\n"}],
                          "color": "danger"}], "channel": "#ops", "link_names": True},
        {"attachments": [{"fallback": "h2 alert", "fields": [{"title": "h2 alert",
                                                            "value": "b\n"}],
                          "color": "danger"}], "channel": "#dev", "link_names": True},
    ], payloads


def test_web_api_form_and_slackbot_text():
    s = Slack()
    d = tmpdir()
    log(d, [{"t": 1704164645, "message": "hello & bye"}])
    c = slack_conf(d, f"""  token xoxb-1
  web_api_url {s.url}/api/chat.postMessage
  channel @someone
  color good""")
    p = run(["-c", c, "--oneshot"], env=ENV)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, headers, body, _), = s.sent
    form = dict(urllib.parse.parse_qsl(body))
    assert path == "/api/chat.postMessage" and form["token"] == "xoxb-1", (path, form)
    assert form["channel"] == "@someone" and form["mrkdwn"] == "true", form
    assert json.loads(form["attachments"]) == [{"fallback": "hello & bye\n",
                                                "text": "hello & bye\n", "color": "good",
                                                "mrkdwn_in": ["text", "fields"]}], form
    s2 = Slack()
    d2 = tmpdir()
    log(d2, [{"t": 1704164645, "message": "to the bot"}])
    c = slack_conf(d2, f"""  slackbot_url {s2.url}/services/hooks/slackbot?token=abc
  channel general""")
    p = run(["-c", c, "--oneshot"], env=ENV)
    assert p.returncode == 0, p.stderr[-2000:]
    (path, _, body, _), = s2.sent
    assert path == "/services/hooks/slackbot?token=abc&channel=%23general", path
    assert body == "to the bot\n", body


def test_refused_payload_retried_alone_and_4xx_kept():
    # two channels, two payloads; the second fails once: only it is sent again
    s = Slack(answers=[(200, None), (503, "busy")])
    d = tmpdir()
    log(d, [{"t": 1704164645, "message": "x", "room": "a"},
            {"t": 1704164646, "message": "y", "room": "b"}])
    c = slack_conf(d, f"""  webhook_url {s.url}/hook
  channel %s
  channel_keys room""")
    p = run(["-c", c, "--oneshot"], env=ENV)
    assert p.returncode == 0, p.stderr[-2000:]
    sent = [(json.loads(b)["channel"], code) for _, _, b, code in s.sent]
    assert sent == [("#a", 200), ("#b", 503), ("#b", 200)], sent
    s2 = Slack(answers=[(404, "no_service")])
    d2 = tmpdir()
    log(d2, [{"t": 1704164645, "message": "x"}])
    a = Agent(slack_conf(d2, f"  webhook_url {s2.url}/hook", buffer="    flush_mode immediate"),
              env=ENV).start()
    try:
        wait_until(lambda: glob.glob(f"{d2}/buf/backup/**/*", recursive=True), what="backup")
    finally:
        a.stop()
    assert len(s2.sent) == 1


def test_configuration_errors():
    d = tmpdir()
    for params, pattern in [
        ("", r"One of `webhook_url` or `slackbot_url`, or `token` is required"),
        ("  token x", r"`channel` parameter required for Slack WebApi"),
        ("  webhook_url http://h/x\n  message %s %s", r"specification mismatch"),
        ("  webhook_url http://h/x\n  icon_emoji :a:\n  icon_url http://i", r"either of"),
        ("  webhook_url http://h/x\n  parse some", r"`parse` must be either"),
    ]:
        path = conf("<match a>\n  @type slack\n%s\n</match>\n" % params, d)
        p = run(["-c", path, "--dry-run"])
        assert p.returncode == 1 and re.search(re.escape(path) + r":\d+", p.stderr), (params, p.stderr)
        assert re.search(pattern, p.stderr), (params, p.stderr)
