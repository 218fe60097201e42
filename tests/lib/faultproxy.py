"""A fault-injecting HTTP reverse proxy for the S3 tests.

It listens on 127.0.0.1 and forwards every request, headers untouched (so
SigV4 signatures over Host still verify), to an upstream such as moto. A
schedule of rules decides which requests get a fault instead:

    px = FaultProxy("http://127.0.0.1:PORT").start()
    px.add("503", method="PUT", times=2)          # 503 SlowDown XML
    px.add("500", path=r"partNumber=2")           # 500 InternalError XML
    px.add("reset", method="PUT")                 # read the request, then RST the connection
    px.add("stall", seconds=30, query="partNumber=2")  # hold the request, no answer
    px.add("skew", seconds=3600)                  # 403 RequestTimeTooSkewed, Date skewed by +1 h
    px.add("drop", method="PUT")                  # forward (S3 stores it), then RST: the client never hears
    px.add("hold", seconds=60, method="PUT")      # forward (S3 stores it), then hold the answer
    px.add("200err", method="POST", query="uploadId")  # 200 OK with an <Error> body (Complete)
    px.add("error", status=400, code="ExpiredToken")  # any S3 error code
    px.add("reply", status=200, body=b"<xml/>")   # answer with this body (XML content type)
    px.add("pass", ...)                           # explicit pass-through (counts matches)

Rules are tried in order; a rule matches on method, a regex over the path
and query (``path``), and a substring of the query (``query``); it fires
``times`` times (None = always). ``after_pass`` skips that many matching
requests before firing (e.g. fail the second part, not the first).
Every request is logged in ``px.log`` as dicts (method, path, status,
action, headers) for assertions. The proxy runs in the test's process.
"""
import http.client, re, socket, struct, threading, time, urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lstest

ERR_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{msg}</Message>'
           '<RequestId>FAULTPROXY</RequestId>{extra}</Error>')


class Rule:
    def __init__(self, action, method=None, path=None, query=None, times=1, seconds=0.0, after_pass=0,
                 status=500, code="InternalError", body=b""):
        self.action, self.method, self.query = action, method, query
        self.body = body
        self.status, self.code = status, code
        self.path = re.compile(path) if path else None
        self.times, self.seconds, self.after_pass = times, seconds, after_pass
        self.fired = 0
        self.seen = 0

    def matches(self, method, target):
        if self.method and method != self.method:
            return False
        if self.path and not self.path.search(target):
            return False
        if self.query and self.query not in urllib.parse.urlsplit(target).query:
            return False
        return True


class FaultProxy:
    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port or 80
        self.rules = []
        self.log = []
        self.lock = threading.Lock()
        self.server = None
        self.port = None
        self.endpoint = None
        self.stalled = []
        self.closing = threading.Event()

    def add(self, action, **kw):
        with self.lock:
            r = Rule(action, **kw)
            self.rules.append(r)
            return r

    def clear(self):
        with self.lock:
            self.rules = []

    def requests(self, method=None, contains=None):
        with self.lock:
            return [e for e in self.log if (method is None or e["method"] == method)
                    and (contains is None or contains in e["target"])]

    def _pick(self, method, target):
        with self.lock:
            for r in self.rules:
                if r.times is not None and r.fired >= r.times:
                    continue
                if not r.matches(method, target):
                    continue
                if r.seen < r.after_pass:
                    r.seen += 1
                    continue
                r.fired += 1
                return r
        return None

    def start(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = b""
                while len(data) < n:
                    chunk = self.rfile.read(min(1 << 20, n - len(data)))
                    if not chunk:
                        break
                    data += chunk
                return data

            def _reply(self, status, body=b"", headers=None, head=False):
                self.log_request(status)
                self.send_response_only(status)   # no automatic Date: ours may be skewed
                hs = dict(headers or {})
                hs.setdefault("Date", formatdate(usegmt=True))
                for k, v in hs.items():
                    if k.lower() in ("content-length", "transfer-encoding", "connection"):
                        continue
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and not head:
                    self.wfile.write(body)

            def _record(self, action, status):
                with proxy.lock:
                    proxy.log.append({"method": self.command, "target": self.path, "action": action,
                                      "status": status, "headers": dict(self.headers.items()),
                                      "time": time.time()})

            def _handle(self):
                rule = proxy._pick(self.command, self.path)
                action = rule.action if rule else "pass"
                if action == "stall":
                    self._record("stall", 0)
                    proxy.stalled.append(self.connection)
                    proxy.closing.wait(rule.seconds)
                    self.close_connection = True
                    return
                body = self._body()
                if action == "reset":
                    self._record("reset", 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if action == "error":
                    x = ERR_XML.format(code=rule.code, msg=f"injected {rule.code}", extra="")
                    self._record(action, rule.status)
                    self._reply(rule.status, x.encode(), {"Content-Type": "application/xml"},
                                head=self.command == "HEAD")
                    return
                if action == "reply":
                    self._record(action, rule.status)
                    self._reply(rule.status, rule.body, {"Content-Type": "application/xml"},
                                head=self.command == "HEAD")
                    return
                if action == "200err":
                    x = ERR_XML.format(code="InternalError", msg="We encountered an internal error. Please try again.", extra="")
                    self._record(action, 200)
                    self._reply(200, (" \n" + x).encode(), {"Content-Type": "application/xml"})
                    return
                if action in ("503", "500", "skew", "400"):
                    if action == "503":
                        st, x = 503, ERR_XML.format(code="SlowDown", msg="Please reduce your request rate.", extra="")
                        hs = {}
                    elif action == "500":
                        st, x = 500, ERR_XML.format(code="InternalError", msg="We encountered an internal error. Please try again.", extra="")
                        hs = {}
                    elif action == "400":
                        st, x = 400, ERR_XML.format(code="RequestTimeout", msg="Your socket connection to the server was not read from or written to within the timeout period.", extra="")
                        hs = {}
                    else:
                        st = 403
                        server = time.time() + rule.seconds
                        x = ERR_XML.format(code="RequestTimeTooSkewed",
                                           msg="The difference between the request time and the current time is too large.",
                                           extra=f"<RequestTime>{self.headers.get('x-amz-date', '')}</RequestTime>"
                                                 f"<ServerTime>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(server))}</ServerTime>"
                                                 "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>")
                        hs = {"Date": formatdate(server, usegmt=True)}
                    hs["Content-Type"] = "application/xml"
                    self._record(action, st)
                    self._reply(st, x.encode(), hs, head=self.command == "HEAD")
                    return
                # pass through
                try:
                    c = http.client.HTTPConnection(proxy.up_host, proxy.up_port, timeout=120)
                    hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
                    c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in hdrs.items():
                        c.putheader(k, v)
                    c.endheaders()
                    if body:
                        c.send(body)
                    r = c.getresponse()
                    data = r.read()
                    rh = r.getheaders()
                    c.close()
                except OSError as e:
                    self._record("upstream-error", 502)
                    self._reply(502, str(e).encode())
                    return
                self._record(action, r.status)
                if action == "drop":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if action == "hold":
                    proxy.stalled.append(self.connection)
                    proxy.closing.wait(rule.seconds)
                    self.close_connection = True
                    return
                self._reply(r.status, data, dict(rh), head=self.command == "HEAD")

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.stop)
        return self

    def stop(self):
        self.closing.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
