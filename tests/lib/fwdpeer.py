"""A forward-protocol client built from Debian's python3-msgpack, for the in_forward tests.

Runs under /usr/bin/python3 (the test runner's Python has no msgpack): the tests call
peer(code) from test_forward_in.py, which runs `code` with this module imported as F and
returns what it printed as JSON. Frames are built by hand so that every mode, the time
forms and the handshake can be checked byte by byte.
"""
import gzip, hashlib, json, os, socket, ssl, struct, sys, time

import msgpack


def event_time(sec, nsec=0):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def entries(records, t=None, et=True):
    """[(time, record)] for records; t: fixed time (int) or None (EventTime with nsec=i)."""
    out = []
    for i, r in enumerate(records):
        if t is not None:
            out.append((t, r))
        else:
            out.append((event_time(1700000000 + i, i) if et else 1700000000 + i, r))
    return out


def message(tag, time_, record, option=None):
    return msgpack.packb([tag, time_, record] + ([option] if option is not None else []))


def forward(tag, ents, option=None):
    return msgpack.packb([tag, [list(e) for e in ents]] + ([option] if option is not None else []))


def packed(tag, ents, option=None, as_str=False, gz=False, members=1):
    body = b"".join(msgpack.packb(list(e)) for e in ents)
    opt = dict(option or {})
    if gz:
        # several gzip members back to back, as the SPEC allows
        step = max(1, len(ents) // members)
        parts, i = [], 0
        while i < len(ents):
            parts.append(gzip.compress(b"".join(msgpack.packb(list(e)) for e in ents[i:i + step])))
            i += step
        body = b"".join(parts)
        opt["compressed"] = "gzip"
    opt.setdefault("size", len(ents))
    if as_str:
        # fluentd's out_forward: str32 header, raw bytes
        head = msgpack.packb(tag)
        return b"\x93" + head + b"\xdb" + struct.pack(">I", len(body)) + body + msgpack.packb(opt)
    return msgpack.packb([tag, body, opt], use_bin_type=True)


def connect(port, timeout=10, tls=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        s = tls.wrap_socket(s, server_hostname="localhost")
    return s


class Reader:
    def __init__(self, sock):
        self.s = sock
        self.u = msgpack.Unpacker(raw=False)

    def next(self, timeout=10):
        self.s.settimeout(timeout)
        while True:
            try:
                return next(self.u)
            except StopIteration:
                pass
            data = self.s.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.u.feed(data)


def closed_within(sock, timeout=10):
    """True when the server closes the connection (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def sha512hex(*parts):
    h = hashlib.sha512()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
    return h.hexdigest()


def handshake(sock, shared_key, hostname="client.example", username="", password="",
              bytewise=False):
    """HELO -> PING -> PONG as fluentd's out_forward does; returns (pong, helo)."""
    r = Reader(sock)
    helo = r.next()
    assert helo[0] == "HELO", helo
    opts = helo[1]
    nonce, auth = opts["nonce"], opts["auth"]
    salt = os.urandom(16).hex()
    ping = ["PING", hostname, salt, sha512hex(salt, hostname, nonce, shared_key),
            username, sha512hex(auth, username, password) if auth else ""]
    data = msgpack.packb(ping)
    if bytewise:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            time.sleep(0.01)
    else:
        sock.sendall(data)
    pong = r.next()
    if pong[1]:
        want = sha512hex(salt, pong[3], nonce, shared_key)
        assert pong[4] == want, ("PONG digest", pong, want)
    return pong, helo, r


def request(port, data, ack=None, timeout=10, sock=None):
    """Send data; with ack, wait for {"ack": ack} and return it with the time it took."""
    s = sock or connect(port)
    t0 = time.time()
    s.sendall(data)
    out = {"sent": len(data)}
    if ack is not None:
        out["ack"] = Reader(s).next(timeout)
        out["elapsed"] = time.time() - t0
    if sock is None:
        s.close()
    return out


def main():
    code = sys.argv[1]
    env = {"F": sys.modules[__name__], "json": json, "msgpack": msgpack, "socket": socket,
           "time": time, "ssl": ssl, "os": os}
    exec(code, env)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
