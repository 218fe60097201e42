"""A WebHDFS stand-in for the webhdfs output's tests: a namenode and a datanode on 127.0.0.1,
files kept in memory.

There is no Hadoop in Debian 12 or npm. This follows the WebHDFS REST API as documented
(hadoop-hdfs-project/hadoop-hdfs/src/site/markdown/WebHDFS.md): CREATE (PUT) and APPEND
(POST) are answered by the namenode with 307 and a Location on the datanode, which takes the
data (201 Created, 200 OK); OPEN (GET) is redirected the same way and takes offset and
length; GETFILESTATUS, LISTSTATUS, MKDIRS and TRUNCATE are answered by the namenode; errors
are RemoteException objects with the HTTP statuses the document lists (FileNotFoundException
404, FileAlreadyExistsException and StandbyException 403, IllegalArgumentException 400).
CREATE's overwrite defaults to true and makes the parent directories. With httpfs=True it
answers as HttpFS does: CREATE and APPEND with data=true take the body at once, which must be
application/octet-stream.

Faults a test asks for: lose_answers (an append or create applied, then the connection closed
without an answer), partial (half of the body applied, then closed), standby (every namenode
request answered StandbyException), fail (500 IOException), race_create (a file created by
"another writer" just before the next CREATE reaches the datanode).
"""
import http.server, json, threading, urllib.parse


def _remote(exc, msg, cls=None):
    return {"RemoteException": {"exception": exc, "javaClassName": cls or f"java.io.{exc}",
                                 "message": msg}}


class HDFSServer:
    def __init__(self, httpfs=False, user=None, port=0):
        self.files = {}          # path -> bytearray
        self.dirs = {"/"}
        self.lock = threading.Lock()
        self.requests = []       # (server, method, path, query dict, content-type, body length)
        self.httpfs = httpfs
        self.user = user         # required user.name, or None
        self.lose_answers = 0
        self.partial = 0
        self.standby = False
        self.fail = 0
        self.race_create = None  # bytes another writer puts at the path before our CREATE
        outer = self

        class Base(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            role = "nn"

            def log_message(self, *a):
                pass

            def reply(self, code, obj=None, raw=None, headers=()):
                body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None
                                                    else b"")
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                if raw is None:
                    self.send_header("Content-Type", "application/json")
                else:
                    self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def parse(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = urllib.parse.unquote(u.path)
                if not path.startswith("/webhdfs/v1"):
                    return None, q, body
                path = path[len("/webhdfs/v1"):] or "/"
                with outer.lock:
                    outer.requests.append((self.role, self.command, path, q,
                                           self.headers.get("Content-Type"), len(body)))
                return path, q, body

            def handle_any(self):
                path, q, body = self.parse()
                if path is None:
                    return self.reply(404, _remote("IllegalArgumentException", "not WebHDFS",
                                                   "java.lang.IllegalArgumentException"))
                op = q.get("op", "").upper()
                if outer.user and q.get("user.name") != outer.user:
                    return self.reply(401, _remote("SecurityException", "user.name is wrong",
                                                   "java.lang.SecurityException"))
                if self.role == "nn":
                    return outer.namenode(self, self.command, path, op, q, body)
                return outer.datanode(self, self.command, path, op, q, body)

            do_GET = do_PUT = do_POST = do_DELETE = handle_any

        class DN(Base):
            role = "dn"

        self.nn = http.server.ThreadingHTTPServer(("127.0.0.1", port), Base)
        self.dn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DN)
        self.port = self.nn.server_address[1]
        self.dn_port = self.dn.server_address[1]
        for s in (self.nn, self.dn):
            threading.Thread(target=s.serve_forever, daemon=True).start()

    # ---- the two roles ----

    def _status(self, path):
        if path in self.files:
            return {"accessTime": 0, "blockSize": 134217728, "group": "supergroup",
                    "length": len(self.files[path]), "modificationTime": 0, "owner": "hdfs",
                    "pathSuffix": "", "permission": "644", "replication": 3, "type": "FILE"}
        return {"accessTime": 0, "blockSize": 0, "group": "supergroup", "length": 0,
                "modificationTime": 0, "owner": "hdfs", "pathSuffix": "", "permission": "755",
                "replication": 0, "type": "DIRECTORY"}

    def _mkdirs(self, path):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.dirs.add("/" + "/".join(parts[:i]))

    def namenode(self, h, method, path, op, q, body):
        if self.standby:
            return h.reply(403, _remote("StandbyException", "Operation category READ is not "
                                        "supported in state standby",
                                        "org.apache.hadoop.ipc.StandbyException"))
        with self.lock:
            if self.fail > 0:
                self.fail -= 1
                return h.reply(500, _remote("IOException", "injected failure"))
        if op == "GETFILESTATUS":
            with self.lock:
                if path not in self.files and path not in self.dirs:
                    return h.reply(404, _remote("FileNotFoundException",
                                                f"File does not exist: {path}"))
                return h.reply(200, {"FileStatus": self._status(path)})
        if op == "LISTSTATUS":
            with self.lock:
                if path not in self.dirs:
                    return h.reply(404, _remote("FileNotFoundException",
                                                f"File {path} does not exist."))
                pre = path.rstrip("/") + "/"
                names = sorted({p[len(pre):].split("/")[0] for p in list(self.files) +
                                list(self.dirs) if p.startswith(pre) and p != pre})
                return h.reply(200, {"FileStatuses": {"FileStatus": [
                    dict(self._status(pre + n), pathSuffix=n) for n in names]}})
        if op == "MKDIRS" and method == "PUT":
            with self.lock:
                self._mkdirs(path)
            return h.reply(200, {"boolean": True})
        if op == "TRUNCATE" and method == "POST":
            n = int(q.get("newlength", "-1"))
            with self.lock:
                if path not in self.files:
                    return h.reply(404, _remote("FileNotFoundException",
                                                f"File does not exist: {path}"))
                if n < 0 or n > len(self.files[path]):
                    return h.reply(400, _remote("HadoopIllegalArgumentException",
                                                "Cannot truncate to a larger file size",
                                                "org.apache.hadoop.HadoopIllegalArgumentException"))
                del self.files[path][n:]
            return h.reply(200, {"boolean": True})
        if (op, method) in (("CREATE", "PUT"), ("APPEND", "POST"), ("OPEN", "GET")):
            if self.httpfs and op != "OPEN" and q.get("data") == "true":
                if h.headers.get("Content-Type") != "application/octet-stream":
                    return h.reply(400, _remote("IllegalArgumentException", "Data upload "
                                                "requests must have content-type set to "
                                                "'application/octet-stream'",
                                                "java.lang.IllegalArgumentException"))
                return self.datanode(h, method, path, op, q, body)
            if self.httpfs and op == "OPEN":
                return self.datanode(h, method, path, op, q, body)
            qq = dict(q, namenoderpcaddress="localhost:8020")
            loc = (f"http://127.0.0.1:{self.dn_port}/webhdfs/v1"
                   f"{urllib.parse.quote(path)}?{urllib.parse.urlencode(qq)}")
            return h.reply(307, None, headers=[("Location", loc)])
        return h.reply(400, _remote("IllegalArgumentException", f"Invalid value for webhdfs "
                                    f"parameter \"op\": {op}",
                                    "java.lang.IllegalArgumentException"))

    def datanode(self, h, method, path, op, q, body):
        if op == "OPEN":
            with self.lock:
                if path not in self.files:
                    return h.reply(404, _remote("FileNotFoundException",
                                                f"File does not exist: {path}"))
                data = bytes(self.files[path])
            off = int(q.get("offset", "0"))
            ln = int(q["length"]) if "length" in q else len(data) - off
            return h.reply(200, raw=data[off:off + ln])
        cut = False
        with self.lock:
            if op == "CREATE":
                if self.race_create is not None:
                    self._mkdirs(path.rsplit("/", 1)[0] or "/")
                    self.files[path] = bytearray(self.race_create)
                    self.race_create = None
                if path in self.files and q.get("overwrite", "true") != "true":
                    return h.reply(403, _remote("FileAlreadyExistsException",
                                                f"{path} for client 127.0.0.1 already exists",
                                                "org.apache.hadoop.fs.FileAlreadyExistsException"))
                self._mkdirs(path.rsplit("/", 1)[0] or "/")
                self.files[path] = bytearray()
            elif path not in self.files:
                return h.reply(404, _remote("FileNotFoundException",
                                            f"File does not exist: {path}"))
            if self.partial > 0:
                self.partial -= 1
                self.files[path] += body[:len(body) // 2]
                cut = True
            else:
                self.files[path] += body
                if self.lose_answers > 0:
                    self.lose_answers -= 1
                    cut = True
        if cut:
            h.close_connection = True
            h.wfile.flush()
            h.connection.shutdown(2)
            return None
        if op == "CREATE":
            return h.reply(201, None, headers=[("Location", f"hdfs://localhost:8020{path}")])
        return h.reply(200, None)

    def data(self, path):
        with self.lock:
            return bytes(self.files.get(path, b""))

    def ops(self, op):
        with self.lock:
            return [r for r in self.requests if r[3].get("op", "").upper() == op]

    def stop(self):
        for s in (self.nn, self.dn):
            s.shutdown()
            s.server_close()
