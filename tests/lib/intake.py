"""Stand-ins for the HTTP APIs of log services (New Relic, Slack...) on 127.0.0.1, and the
"tail a JSON log" source the output tests feed them from.

Intake records every POST as (path, headers, raw body, status) and answers with the next of
the (status, body) pairs it was given, then with default (a callable may pick the default by
path). The tests decode the bodies themselves, each by its service's rules."""
import http.server, json, os, threading

import lstest


class Intake:
    def __init__(self, answers=(), default=(200, "ok")):
        self.posts, self.answers, self.lock = [], list(answers), threading.Lock()
        self.default = default
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    if outer.answers:
                        code, body = outer.answers.pop(0)
                    else:
                        code, body = outer.default(self.path) if callable(outer.default) \
                            else outer.default
                    outer.posts.append((self.path, dict(self.headers), raw, code))
                msg = body.encode() if isinstance(body, str) else body
                self.send_response(code)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)


def json_log_source(d, tag="app.web", time_key="t", time_type="float"):
    """A tail <source> over d/in.log, JSON lines with the event time in time_key."""
    return f"""
<source>
  @type tail
  path {d}/in.log
  pos_file {d}/pos
  read_from_head true
  tag {tag}
  <parse>
    @type json
    time_key {time_key}
    time_type {time_type}
  </parse>
</source>
"""


def append_json(d, recs):
    lstest.write(os.path.join(d, "in.log"), "".join(json.dumps(r) + "\n" for r in recs), "a")
