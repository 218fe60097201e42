"""A small Elasticsearch stand-in for the elasticsearch output's tests: GET / answers the
version, POST [/<index>]/_bulk reads the NDJSON (gzip with Content-Encoding: gzip) as
Elasticsearch's bulk API does and answers item by item.

There is no Elasticsearch or OpenSearch in Debian 12 or npm to run, so this follows the
documented bulk API (docs/reference/docs/bulk.asciidoc): an action line, then a source line
(none for delete); each item of the answer under its action's name with status and, on a
failure, error {type, reason}; "errors": true when any item failed. What a test wants to fail
is asked for through the documents: a field `_fail` = [status, type] fails the item that many
times in a row (`_fail_times`, default 1), then it is indexed; create with an _id that exists
is 409, as Elasticsearch answers it.

With sigv4=dict(key, secret, region, service[, token]) it checks every request as Amazon
OpenSearch Service does: the Authorization header's SigV4 signature is computed again by
botocore (an independent implementation) from the request as received, the query
canonicalized from its decoded names and values as AWS does, and a request that does not
match is answered 403 and not indexed.
"""
import gzip, hashlib, http.server, json, re, threading, urllib.parse

import lstest


class ESServer:
    def __init__(self, version="7.17.9", port=0, user=None, password=None, sigv4=None):
        self.version = version
        self.docs = {}          # index -> list of (id, source, type)
        self.requests = []      # (method, path, headers, body bytes)
        self.fail_counts = {}
        self.lock = threading.Lock()
        self.auth = None
        self.down = False
        self.sigv4 = sigv4
        self.sig_ok = 0         # requests whose signature botocore agreed with
        self.sig_bad = []       # (method, path, why)
        self.lose_answers = 0   # bulks indexed whose answer is then lost (a 500 instead)
        if user is not None:
            import base64
            self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                with outer.lock:
                    outer.requests.append(("GET", self.path, dict(self.headers), b""))
                if outer.auth and self.headers.get("Authorization") != outer.auth:
                    return self.reply(401, {"error": "unauthorized", "status": 401})
                if not outer.signed_ok("GET", self.path, self.headers, b""):
                    return self.reply(403, {"message": "The request signature we calculated does "
                                            "not match the signature you provided."})
                if outer.down:
                    return self.reply(503, {"error": "down", "status": 503})
                self.reply(200, {"name": "stand-in", "version": {"number": outer.version},
                                 "tagline": "You Know, for Search"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append(("POST", self.path, dict(self.headers), raw))
                if outer.auth and self.headers.get("Authorization") != outer.auth:
                    return self.reply(401, {"error": "unauthorized", "status": 401})
                if not outer.signed_ok("POST", self.path, self.headers, raw):
                    return self.reply(403, {"message": "The request signature we calculated does "
                                            "not match the signature you provided."})
                if outer.down:
                    return self.reply(503, {"error": "down", "status": 503})
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" \
                    else raw
                url = urllib.parse.urlparse(self.path)
                parts = [p for p in url.path.split("/") if p]
                default_index = parts[0] if len(parts) == 2 else None
                answer = outer.bulk(body, default_index)
                with outer.lock:
                    lost = outer.lose_answers > 0
                    outer.lose_answers -= lost
                if lost:
                    return self.reply(500, {"error": "answer lost", "status": 500})
                self.reply(200, answer)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        lstest.on_cleanup(self.httpd.shutdown)

    def signed_ok(self, method, path, headers, body):
        if self.sigv4 is None:
            return True
        why = self._sigv4_problem(method, path, headers, body)
        with self.lock:
            if why:
                self.sig_bad.append((method, path, why))
            else:
                self.sig_ok += 1
        return why is None

    def _sigv4_problem(self, method, path, headers, body):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        sv = self.sigv4
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                         r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
                         headers.get("Authorization", ""))
        if not m:
            return "no SigV4 Authorization: %r" % headers.get("Authorization")
        key, day, region, service, signed, sig = m.groups()
        if (key, region, service) != (sv["key"], sv["region"], sv["service"]):
            return f"credential scope {key}/{region}/{service}"
        amz_date = headers.get("X-Amz-Date", "")
        if not amz_date.startswith(day):
            return "x-amz-date and the scope's day differ"
        if headers.get("X-Amz-Content-SHA256") != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's"
        if sv.get("token") and headers.get("X-Amz-Security-Token") != sv["token"]:
            return "no session token"
        hdrs = {}
        for name in signed.split(";"):
            if headers.get(name) is None:
                return f"signed header {name} missing"
            hdrs[name] = headers.get(name)
        u = urllib.parse.urlsplit(path)
        q = "&".join(urllib.parse.quote(urllib.parse.unquote(k), safe="-_.~") + "=" +
                     urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~")
                     for k, _, v in (p.partition("=") for p in u.query.split("&") if p))
        req = AWSRequest(method=method, url=f"http://{headers['Host']}{u.path}" +
                         (f"?{q}" if q else ""), data=body, headers=hdrs)
        req.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(sv["key"], sv["secret"], sv.get("token")), service, region)
        want = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        return None if want == sig else "signature differs from botocore's"

    def bulk(self, body, default_index):
        lines = body.decode().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        items, errors, i = [], False, 0
        with self.lock:
            while i < len(lines):
                action = json.loads(lines[i])
                (op, meta), = action.items()
                src = json.loads(lines[i + 1])
                i += 2
                index = meta.get("_index", default_index)
                doc_id = meta.get("_id")
                key = json.dumps(src.get("doc", src), sort_keys=True)
                fail = (src.get("doc", src) or {}).get("_fail")
                if fail:
                    times = (src.get("doc", src) or {}).get("_fail_times", 1)
                    seen = self.fail_counts.get(key, 0)
                    if seen < times:
                        self.fail_counts[key] = seen + 1
                        errors = True
                        items.append({op: {"_index": index, "status": fail[0],
                                           "error": {"type": fail[1], "reason": "asked"}}})
                        continue
                docs = self.docs.setdefault(index, [])
                if op == "create" and doc_id is not None and any(d[0] == doc_id for d in docs):
                    errors = True
                    items.append({op: {"_index": index, "_id": doc_id, "status": 409,
                                       "error": {"type": "version_conflict_engine_exception",
                                                 "reason": "document already exists"}}})
                    continue
                if op == "update":
                    old = next((d for d in docs if d[0] == doc_id), None)
                    if old is None:
                        if src.get("doc_as_upsert"):
                            docs.append((doc_id, src["doc"], meta.get("_type")))
                        elif "upsert" in src:
                            docs.append((doc_id, src["upsert"], meta.get("_type")))
                        else:
                            errors = True
                            items.append({op: {"_index": index, "_id": doc_id, "status": 404,
                                               "error": {"type": "document_missing_exception",
                                                         "reason": "missing"}}})
                            continue
                    else:
                        old[1].update(src["doc"])
                    items.append({op: {"_index": index, "_id": doc_id, "status": 200}})
                    continue
                if doc_id is not None:
                    docs[:] = [d for d in docs if d[0] != doc_id]
                docs.append((doc_id, src, meta.get("_type", "<none>") if "_type" in meta
                             else "<none>"))
                items.append({op: {"_index": index, "_id": doc_id or "auto", "status": 201}})
        return {"took": 1, "errors": errors, "items": items}

    def all_docs(self):
        with self.lock:
            return {k: list(v) for k, v in self.docs.items()}

    def bulks(self):
        with self.lock:
            return [r for r in self.requests if r[0] == "POST"]
