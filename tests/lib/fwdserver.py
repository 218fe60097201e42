"""A Forward protocol v1 server for out_forward's tests, written with Debian's python3-msgpack.

Run as a script by /usr/bin/python3 (the test runner's Python has no msgpack): it listens on
127.0.0.1:PORT over TCP (or TLS), answers UDP heartbeats, does the shared_key/user handshake,
and writes one JSON line per received message to EVENTS: the message's raw bytes (hex), the
tag, the type of entries (bin/str), the option map, and the decoded entries with each time as
{"et": [sec, nsec]} for the EventTime ext or an integer. Acks are given, withheld or delayed
by the mode read from the CONTROL file at each message ("ack", "withhold", "close"; "lateread":
acks, after waiting half a second before reading a new connection).

Imported by a test, FwdServer starts and stops that script and reads its events.
"""
import base64, hashlib, json, os, signal, socket, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
SYS_PY = "/usr/bin/python3"


def _have_msgpack():
    try:
        return subprocess.run([SYS_PY, "-c", "import msgpack"], capture_output=True).returncode == 0
    except OSError:
        return False


class FwdServer:
    """The server script in a subprocess. mode: initial ack mode; shared_key/users for <security>."""

    def __init__(self, d, port=None, mode="ack", shared_key=None, users=None, hostname="server.example",
                 tls=None, udp=True, name="fwd"):
        import lstest
        self.d = d
        self.port = port or lstest.free_port()
        self.events = os.path.join(d, f"{name}-{self.port}.events")
        self.control = os.path.join(d, f"{name}-{self.port}.control")
        self.log_path = os.path.join(d, f"{name}-{self.port}.log")
        self.args = [SYS_PY, os.path.join(HERE, "fwdserver.py"), "--port", str(self.port),
                     "--events", self.events, "--control", self.control, "--hostname", hostname]
        if shared_key:
            self.args += ["--shared-key", shared_key]
        for u, p in (users or {}).items():
            self.args += ["--user", f"{u}:{p}"]
        if tls:
            self.args += ["--cert", tls[0], "--key", tls[1]]
        if not udp:
            self.args.append("--no-udp")
        self.set_mode(mode)
        self.p = None
        self._lstest = lstest

    def set_mode(self, mode):
        with open(self.control + ".tmp", "w") as f:
            f.write(mode)
        os.replace(self.control + ".tmp", self.control)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf)
        self._lstest.on_cleanup(self.stop)
        self._lstest.wait_until(self._listening, 15, what=f"forward server on {self.port}")
        return self

    def _listening(self):
        if self.p.poll() is not None:
            raise AssertionError("forward server died: " + open(self.log_path).read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p = None

    def messages(self):
        """Every message received so far (dicts), in arrival order."""
        if not os.path.exists(self.events):
            return []
        out = []
        with open(self.events) as f:
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
        return out

    def log(self):
        return open(self.log_path).read() if os.path.exists(self.log_path) else ""


# ---------------- the server (runs under /usr/bin/python3) ----------------

def _ext_hook(code, data):
    import msgpack
    if code == 0 and len(data) == 8:
        return {"et": [int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")]}
    return msgpack.ExtType(code, data)


def _jsonable(o):
    if isinstance(o, bytes):
        return {"bytes_b64": base64.b64encode(o).decode()}
    if isinstance(o, dict):
        return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(x) for x in o]
    return o


def _sha512(*parts):
    h = hashlib.sha512()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
    return h.hexdigest()


def _serve(args):
    import msgpack, ssl, gzip
    lock = threading.Lock()
    ev = open(args.events, "a")

    def mode():
        try:
            return open(args.control).read().strip()
        except OSError:
            return "ack"

    def record(d):
        with lock:
            ev.write(json.dumps(d) + "\n")
            ev.flush()

    users = dict(u.split(":", 1) for u in args.user)

    def handshake(conn, up):
        nonce, auth = os.urandom(16), (os.urandom(16) if users else b"")
        conn.sendall(msgpack.packb(["HELO", {"nonce": nonce, "auth": auth, "keepalive": True}],
                                   use_bin_type=True))
        ping = next_obj(conn, up)
        if ping is None:
            return False
        ok, reason = True, ""
        if not (isinstance(ping, list) and len(ping) == 6 and ping[0] == "PING"):
            ok, reason = False, "invalid ping message"
        else:
            _, host, salt, dig, user, pwd = ping
            salt_b = salt if isinstance(salt, bytes) else salt.encode()
            if dig != _sha512(salt_b, host, nonce, args.shared_key):
                ok, reason = False, "shared_key mismatch"
            elif users and not (user in users and pwd == _sha512(auth, user, users[user])):
                ok, reason = False, "username/password mismatch"
        record({"handshake": ok, "reason": reason, "ping": _jsonable(ping)})
        if not ok:
            conn.sendall(msgpack.packb(["PONG", False, reason, "", ""], use_bin_type=True))
            return False
        conn.sendall(msgpack.packb(["PONG", True, "", args.hostname,
                                    _sha512(salt_b, args.hostname, nonce, args.shared_key)],
                                   use_bin_type=True))
        return True

    def next_obj(conn, up, raw_out=None):
        while True:
            start = up.tell()
            try:
                o = up.unpack()
                if raw_out is not None:
                    raw_out.append((start, up.tell()))
                return o
            except msgpack.OutOfData:
                pass
            data = conn.recv(65536)
            if not data:
                return None
            buf.setdefault(id(up), bytearray()).extend(data)
            up.feed(data)

    buf = {}

    def handle(conn, peer):
        up = msgpack.Unpacker(raw=False, ext_hook=_ext_hook, max_buffer_size=512 << 20)
        if mode() == "lateread":
            time.sleep(0.5)     # a busy server: the client has written and closed by now
        try:
            if args.shared_key and not handshake(conn, up):
                return
            while True:
                spans = []
                msg = next_obj(conn, up, spans)
                if msg is None:
                    return
                raw = bytes(buf[id(up)][spans[0][0]:spans[0][1]])
                m = mode()
                if m == "close":
                    record({"closed_without_reading": True})
                    return
                d = {"peer": peer[1], "raw_hex": raw.hex(), "time": time.time()}
                if isinstance(msg, list) and len(msg) >= 2:
                    tag, entries = msg[0], msg[1]
                    opt = msg[2] if len(msg) > 2 else {}
                    d["tag"] = tag
                    d["option"] = _jsonable(opt)
                    d["entries_type"] = type(entries).__name__
                    if isinstance(entries, (bytes, str)):
                        data = entries if isinstance(entries, bytes) else entries.encode("utf-8", "surrogateescape")
                        if opt.get("compressed") == "gzip":
                            d["gzip_magic"] = data[:2].hex()
                            data = gzip.decompress(data)
                        d["entries_hex"] = data.hex()
                        eu = msgpack.Unpacker(raw=False, ext_hook=_ext_hook)
                        eu.feed(data)
                        d["entries"] = [_jsonable(e) for e in eu]
                record(d)
                if isinstance(msg, list) and len(msg) > 2 and isinstance(msg[2], dict) and "chunk" in msg[2]:
                    if m == "ack":
                        conn.sendall(msgpack.packb({"ack": msg[2]["chunk"]}, use_bin_type=True))
                    elif m == "hugeack":
                        conn.sendall(b"\xdd\xff\xff\xff\xff")     # array32 claiming 4G elements
                    elif m == "badack":
                        conn.sendall(msgpack.packb({"ack": "bogus"}, use_bin_type=True))
        except (OSError, ValueError) as e:
            print("connection error:", e, flush=True)
        finally:
            buf.pop(id(up), None)
            try:
                conn.close()
            except OSError:
                pass

    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(64)
    if not args.no_udp:
        us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        us.bind(("127.0.0.1", args.port))

        def udp():
            while True:
                _, a = us.recvfrom(128)
                us.sendto(b"\0", a)
        threading.Thread(target=udp, daemon=True).start()
    print("listening", args.port, flush=True)
    while True:
        c, peer = ls.accept()
        if ctx:
            try:
                c.settimeout(10)
                c = ctx.wrap_socket(c, server_side=True)
                c.settimeout(None)
            except (OSError, ssl.SSLError) as e:
                print("tls handshake failed:", e, flush=True)
                record({"tls_failed": str(e)})
                c.close()
                continue
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--hostname", default="server.example")
    ap.add_argument("--shared-key", dest="shared_key")
    ap.add_argument("--user", action="append", default=[])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--no-udp", action="store_true")
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    _serve(ap.parse_args())
