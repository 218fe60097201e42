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
"""
import gzip, http.server, json, threading, urllib.parse

import lstest


class ESServer:
    def __init__(self, version="7.17.9", port=0, user=None, password=None):
        self.version = version
        self.docs = {}          # index -> list of (id, source, type)
        self.requests = []      # (method, path, headers, body bytes)
        self.fail_counts = {}
        self.lock = threading.Lock()
        self.auth = None
        self.down = False
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
