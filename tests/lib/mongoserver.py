"""A MongoDB stand-in for the mongo output's tests, run by /usr/bin/python3 (Debian's python3-bson,
an independent BSON implementation, decodes what logship's libmongoc sends).

There is no MongoDB server in Debian 12 or npm to run, so this speaks the wire protocol as the
server documents it (OP_MSG, with OP_QUERY/OP_REPLY for the legacy handshake): hello /
isMaster, ping, buildInfo, listCollections, create (capped options kept), createIndexes,
insert (documents from the command and from a kind-1 document sequence; a duplicate _id is
error 11000, as a unique index makes it), find (for the tests), SCRAM-SHA-256 and SCRAM-SHA-1
authentication (RFC 5802/7677) when started with a user, and endSessions. Unknown commands
answer ok. Each inserted document is appended as a JSON line (bson's canonical extended JSON)
to --out, so the test process reads them without bson.

    python3 mongoserver.py --port P --out FILE [--user U --password W] [--fail-inserts N]
        [--reject-field F]

--fail-inserts N: the first N insert commands fail whole (code 91, ShutdownInProgress).
--reject-field F: a document holding field F is refused with a write error (code 2).
--lose-answers N: the first N insert commands are carried out, then the connection is closed
without an answer (a reply lost on the network).
"""
import argparse, base64, datetime, hashlib, hmac, json, os, socketserver, struct, sys, threading

import bson
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

EPOCH = datetime.datetime(1970, 1, 1)


def canonical(v):
    """A decoded BSON value as canonical extended JSON (bson.json_util needs pymongo)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, Int64):
        return {"$numberLong": str(int(v))}
    if isinstance(v, int):
        return {"$numberInt": str(v)}
    if isinstance(v, float):
        return {"$numberDouble": repr(v)}
    if isinstance(v, datetime.datetime):
        d = v.replace(tzinfo=None) - EPOCH
        ms = (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000
        return {"$date": {"$numberLong": str(ms)}}
    if isinstance(v, ObjectId):
        return {"$oid": str(v)}
    if isinstance(v, Decimal128):
        return {"$numberDecimal": str(v)}
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canonical(x) for x in v]
    if isinstance(v, bytes):
        return {"$binary": base64.b64encode(v).decode()}
    return repr(v)

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013

args = None
lock = threading.Lock()
state = {"inserts": 0, "collections": {}, "ids": set(), "lost": 0}


class Lost(Exception):
    pass


def reply_msg(req_id, doc):
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(doc)
    return struct.pack("<iiii", 16 + len(body), 0, req_id, OP_MSG) + body


def reply_legacy(req_id, doc):
    body = struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(doc)
    return struct.pack("<iiii", 16 + len(body), 0, req_id, OP_REPLY) + body


HELLO = {"ismaster": True, "isWritablePrimary": True, "maxBsonObjectSize": 16777216,
         "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
         "logicalSessionTimeoutMinutes": 30, "connectionId": 1, "minWireVersion": 0,
         "maxWireVersion": 13, "readOnly": False, "ok": 1.0}


class Scram:
    def __init__(self, mech):
        self.mech = mech
        self.h = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha1
        pw = args.password
        if mech == "SCRAM-SHA-1":   # MongoDB's SCRAM-SHA-1 password digest
            pw = hashlib.md5(f"{args.user}:mongo:{pw}".encode()).hexdigest()
        self.salt = os.urandom(28 if mech == "SCRAM-SHA-256" else 16)
        self.iters = 15000 if mech == "SCRAM-SHA-256" else 10000
        self.salted = hashlib.pbkdf2_hmac(self.h().name, pw.encode(), self.salt, self.iters)

    def first(self, payload):
        msg = payload.decode()
        assert msg.startswith("n,,"), msg
        self.client_first_bare = msg[3:]
        attrs = dict(kv.split("=", 1) for kv in self.client_first_bare.split(","))
        if attrs["n"] != args.user:
            return None
        self.nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
        self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={self.iters}"
        return self.server_first.encode()

    def final(self, payload):
        msg = payload.decode()
        without_proof, _, proof = msg.rpartition(",p=")
        auth_msg = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        ckey = hmac.new(self.salted, b"Client Key", self.h).digest()
        skey = self.h(ckey).digest()
        sig = hmac.new(skey, auth_msg, self.h).digest()
        if bytes(a ^ b for a, b in zip(ckey, sig)) != base64.b64decode(proof):
            return None
        server_key = hmac.new(self.salted, b"Server Key", self.h).digest()
        return ("v=" + base64.b64encode(hmac.new(server_key, auth_msg, self.h).digest()).decode()).encode()


class Conn(socketserver.BaseRequestHandler):
    def recvn(self, n):
        b = b""
        while len(b) < n:
            c = self.request.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def handle(self):
        self.authed = args.user is None
        self.scram = None
        try:
            while True:
                hdr = self.recvn(16)
                length, req_id, _, op = struct.unpack("<iiii", hdr)
                body = self.recvn(length - 16)
                if op == OP_QUERY:
                    flags = struct.unpack("<i", body[:4])[0]
                    end = body.index(b"\x00", 4)
                    doc = bson.decode(body[end + 9:][:struct.unpack("<i", body[end + 9:end + 13])[0]])
                    self.request.sendall(reply_legacy(req_id, self.command(doc, [])))
                    del flags
                elif op == OP_MSG:
                    pos, doc, seqs = 4, None, []
                    flags = struct.unpack("<I", body[:4])[0]
                    end = len(body) - (4 if flags & 1 else 0)
                    while pos < end:
                        kind = body[pos]
                        pos += 1
                        size = struct.unpack("<i", body[pos:pos + 4])[0]
                        if kind == 0:
                            doc = bson.decode(body[pos:pos + size])
                        else:
                            sec = body[pos + 4:pos + size]
                            ident, _, rest = sec.partition(b"\x00")
                            docs = []
                            while rest:
                                n = struct.unpack("<i", rest[:4])[0]
                                docs.append(bson.decode(rest[:n]))
                                rest = rest[n:]
                            seqs.append((ident.decode(), docs))
                        pos += size
                    try:
                        out = self.command(doc, seqs)
                    except Lost:
                        return
                    if not (flags & 2):     # moreToCome: no answer
                        self.request.sendall(reply_msg(req_id, out))
                else:
                    return
        except (EOFError, ConnectionError):
            return

    def command(self, doc, seqs):
        name = next(iter(doc))
        lname = name.lower()
        if lname in ("hello", "ismaster"):
            h = dict(HELLO)
            if args.user and "saslSupportedMechs" in doc:
                h["saslSupportedMechs"] = ["SCRAM-SHA-256", "SCRAM-SHA-1"]
            return h
        if lname in ("ping", "buildinfo", "endsessions", "getlasterror"):
            return {"ok": 1.0, "version": "6.0.0", "versionArray": [6, 0, 0, 0]}
        if lname == "saslstart":
            self.scram = Scram(doc.get("mechanism"))
            out = self.scram.first(bytes(doc["payload"]))
            if out is None:
                return {"ok": 0.0, "errmsg": "Authentication failed.", "code": 18}
            return {"conversationId": 1, "done": False, "payload": out, "ok": 1.0}
        if lname == "saslcontinue":
            if self.scram is None:
                return {"ok": 0.0, "errmsg": "no conversation", "code": 17}
            if getattr(self.scram, "finished", False):
                self.authed = True
                return {"conversationId": 1, "done": True, "payload": b"", "ok": 1.0}
            out = self.scram.final(bytes(doc["payload"]))
            if out is None:
                return {"ok": 0.0, "errmsg": "Authentication failed.", "code": 18}
            self.scram.finished = True
            self.authed = True
            return {"conversationId": 1, "done": True, "payload": out, "ok": 1.0}
        if not self.authed:
            return {"ok": 0.0, "errmsg": f"command {name} requires authentication", "code": 13}
        db = doc.get("$db", "admin")
        if lname == "listcollections":
            with lock:
                names = [c for (d, c) in state["collections"] if d == db]
            flt = doc.get("filter") or {}
            batch = [{"name": c, "type": "collection",
                      "options": state["collections"][(db, c)]}
                     for c in names if "name" not in flt or flt["name"] == c]
            return {"cursor": {"id": 0, "ns": f"{db}.$cmd.listCollections", "firstBatch": batch},
                    "ok": 1.0}
        if lname == "create":
            opts = {k: v for k, v in doc.items() if k in ("capped", "size", "max")}
            with lock:
                if (db, doc[name]) in state["collections"]:
                    return {"ok": 0.0, "errmsg": "Collection already exists", "code": 48}
                state["collections"][(db, doc[name])] = opts
            self.log({"op": "create", "db": db, "collection": doc[name], "options": opts})
            return {"ok": 1.0}
        if lname == "createindexes":
            self.log({"op": "createIndexes", "db": db, "collection": doc[name],
                      "indexes": json.loads(json.dumps(doc.get("indexes"), default=int))})
            return {"ok": 1.0, "numIndexesBefore": 1, "numIndexesAfter": 2}
        if lname == "insert":
            docs = list(doc.get("documents") or [])
            for ident, d in seqs:
                if ident == "documents":
                    docs += d
            with lock:
                state["inserts"] += 1
                if state["inserts"] <= args.fail_inserts:
                    return {"ok": 0.0, "errmsg": "The server is in quiesce mode", "code": 91}
                state["collections"].setdefault((db, doc[name]), {})
            n, errors = 0, []
            ordered = doc.get("ordered", True)
            for i, d in enumerate(docs):
                err = None
                with lock:
                    if d.get("_id") in state["ids"]:
                        err = (11000, f"E11000 duplicate key error collection: {db}.{doc[name]}")
                    elif args.reject_field and args.reject_field in d:
                        err = (2, f"Document failed validation: {args.reject_field}")
                    else:
                        state["ids"].add(d.get("_id"))
                if err:
                    errors.append({"index": i, "code": err[0], "errmsg": err[1]})
                    if ordered:
                        break
                    continue
                n += 1
                self.log({"op": "insert", "db": db, "collection": doc[name],
                          "doc": canonical(d)})
            out = {"n": n, "ok": 1.0}
            if errors:
                out["writeErrors"] = errors
            with lock:
                lose = state["lost"] < args.lose_answers
                state["lost"] += lose
            if lose:
                raise Lost()
            return out
        return {"ok": 1.0}

    def log(self, obj):
        with lock:
            with open(args.out, "a") as f:
                f.write(json.dumps(obj) + "\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--fail-inserts", type=int, default=0)
    p.add_argument("--reject-field")
    p.add_argument("--lose-answers", type=int, default=0)
    args = p.parse_args()
    srv = Server(("127.0.0.1", args.port), Conn)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
