"""The forward stage's client (bench.py), under Debian's /usr/bin/python3 for python3-msgpack.

    fwd_client.py send PORT LOG COUNT BATCH   COUNT records of about 1 KB, from the nginx lines
                                              of LOG, as PackedForward requests of BATCH entries
                                              (EventTime, `chunk` option), each ack awaited;
                                              prints {"records", "record_bytes", "requests",
                                              "wire_bytes", "elapsed"} as JSON
    fwd_client.py idle PORT N                 opens N connections and holds them open; prints
                                              "ready" and closes them when stdin closes

Every request is built before the first is sent, so the client's own packing does not stretch
the agent's wall time. Frames come from tests/lib/fwdpeer.py (the in_forward tests' client).
"""
import json, os, re, socket, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import msgpack  # noqa: E402
import fwdpeer as F  # noqa: E402
from bench import NGINX_RE  # noqa: E402

RECORD = 1024


def records(log, count):
    """count records of RECORD packed bytes: an nginx line's fields, the line itself, and the
    lines after it as a `context` field filling the record to RECORD bytes. Each line is used
    by one record only (the log is reread from the start if it runs out), so the records
    compress like log text does, not like text repeated within gzip's window."""
    match = re.compile(NGINX_RE).match
    with open(log, "rb") as f:
        lines = [ln.rstrip(b"\n") for ln in f]
    out = []
    i = 0
    while len(out) < count:
        ln = lines[i % len(lines)]
        m = match(ln)
        i += 1
        if not m:
            continue
        rec = {k: v.decode() for k, v in m.groupdict().items() if v is not None}
        rec["log"] = ln.decode()
        room = RECORD - len(msgpack.packb(dict(rec, context=""))) - 3
        ctx = []
        while room - sum(len(c) + 1 for c in ctx) > 0:
            ctx.append(lines[i % len(lines)].decode())
            i += 1
        # str headers grow by a byte or two past 31 and 255 characters: trim until it fits
        rec["context"] = " ".join(ctx)[:max(0, room)]
        while len(msgpack.packb(rec)) > RECORD:
            rec["context"] = rec["context"][:-1]
        out.append(rec)
    return out


def send(port, log, count, batch):
    recs = records(log, count)
    now = int(time.time())
    reqs = []
    rec_bytes = 0
    for b in range(0, len(recs), batch):
        ents = [(F.event_time(now, b + j), r) for j, r in enumerate(recs[b:b + batch])]
        rec_bytes += sum(len(msgpack.packb(r)) for r in recs[b:b + batch])
        chunk = os.urandom(16).hex()
        reqs.append((chunk, F.packed("bench.fwd", ents, option={"chunk": chunk})))
    s = connect_retry(port)
    r = F.Reader(s)
    t0 = time.monotonic()
    for chunk, data in reqs:
        s.sendall(data)
        ack = r.next(timeout=300)
        if ack.get("ack") != chunk:
            raise SystemExit("fwd_client: ack %r for chunk %s" % (ack, chunk))
    elapsed = time.monotonic() - t0
    s.close()
    print(json.dumps({"records": len(recs), "record_bytes": rec_bytes, "requests": len(reqs),
                      "wire_bytes": sum(len(d) for _, d in reqs), "elapsed": elapsed}))


def connect_retry(port, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return F.connect(port, timeout=300)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def idle(port, n):
    socks = [connect_retry(port)]
    for _ in range(n - 1):
        socks.append(F.connect(port))
    # one request on the last connection, acked: the agent has accepted every one before it
    s = socks[-1]
    s.sendall(F.packed("bench.idle", F.entries([{"m": "x"}]), option={"chunk": "idle"}))
    F.Reader(s).next(timeout=60)
    print("ready", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


def main():
    if sys.argv[1] == "send":
        send(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "idle":
        idle(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
