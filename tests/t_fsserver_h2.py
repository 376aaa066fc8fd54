#!/usr/bin/env python3
"""HTTP/2, gRPC and Listen checks of tests/fsserver.py at the frame level
(run by tests/t_fsserver_h2.sh).

    python3 tests/t_fsserver_h2.py HOST PORT

Asserts real values: frames, error codes, messages, billed reads.  Exit 0
when every assertion holds.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fs_proto  # noqa: E402
import h2client as H  # noqa: E402
import hpack  # noqa: E402

HOST, PORT = sys.argv[1], int(sys.argv[2])
PROJ = "demo-h2"
DB = "projects/%s/databases/(default)" % PROJ
ROOT = DB + "/documents"
npass = 0

PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM, \
    COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 1, 3, 6, 7, 9, 11


def check(what, cond, detail=None):
    global npass
    if not cond:
        sys.stderr.write("FAIL: %s%s\n" % (what, "" if detail is None else ": %r" % (detail,)))
        sys.exit(1)
    npass += 1


def eq(what, got, want):
    check(what, got == want, {"got": got, "want": want})


def http(method, path, body=None):
    r = urllib.request.Request("http://%s:%d%s" % (HOST, PORT, path), method=method,
                               data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(r, timeout=10) as f:
        return json.load(f)


def put(path, **fields):
    return http("PATCH", "/v1/%s/%s" % (ROOT, path), {"fields": fields})


def delete(path):
    http("DELETE", "/v1/%s/%s" % (ROOT, path))


def ctl(path, body=None):
    return http("POST" if body is not None else "GET", "/_test/" + path, body)


def listen_log(since):
    return [r for r in ctl("log?since=%d" % since)["requests"] if r["op"] == "Listen"]


def last_seq():
    r = ctl("log")["requests"]
    return r[-1]["seq"] if r else 0


def S(x):
    return {"stringValue": x}


def I(x):
    return {"integerValue": str(x)}


def query(coll, tid=1, where=None, parent=ROOT, **extra):
    sq = {"from": [{"collectionId": coll}]}
    if where:
        sq["where"] = where
    t = {"targetId": tid, "query": {"parent": parent, "structuredQuery": sq}}
    t.update(extra)
    return {"database": DB, "addTarget": t}


def lt(field, n):
    return {"fieldFilter": {"field": {"fieldPath": field}, "op": "LESS_THAN", "value": I(n)}}


def goaway_of(c, timeout=3.0):
    """The GOAWAY the server sends before closing: (last stream, code)."""
    for f in c.frames(timeout, until=lambda f: f[0] == H.GOAWAY):
        if f[0] == H.GOAWAY:
            return struct.unpack(">II", f[3][:8])
    return None


def settled(call, n=None):
    """Pump until the call is quiet (or holds n messages)."""
    call.pump(0.5, (lambda x: len(x.messages) >= n) if n else None)
    return call


def open_listen(req, sid=1, extra=None):
    c = H.Client(HOST, PORT)
    call = H.Call(c, sid)
    c.listen(sid, req, extra)
    return c, call


def wait_streams(n, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = len(ctl("listen")["streams"])
        if got == n:
            return got
        time.sleep(0.05)
    return len(ctl("listen")["streams"])


# ------------------------------------------------------------ HTTP/2 framing

c = H.Client(HOST, PORT)
fs = c.frames(1.0)
eq("server SETTINGS first", fs[0][:3], (H.SETTINGS, 0, 0))
got = dict(struct.unpack(">HI", fs[0][3][i:i + 6]) for i in range(0, len(fs[0][3]), 6))
eq("advertises MAX_CONCURRENT_STREAMS 100 and MAX_HEADER_LIST_SIZE 16384", got, {3: 100, 6: 16384})
check("acknowledges our SETTINGS", any(f[:2] == (H.SETTINGS, 1) and f[3] == b"" for f in fs), fs)
c.send(H.frame(H.PING, 0, 0, b"12345678"))
eq("PING answered", c.frames(1.0, until=lambda f: f[0] == H.PING)[-1], (H.PING, 1, 0, b"12345678"))
c.send(H.frame(0xfa, 0xff, 0, b"ignore me") + H.frame(0xfb, 0, 3, b"") + H.frame(H.PING, 0, 0, b"abcdefgh"))
eq("unknown frame types ignored (5.5)", c.frames(1.0, until=lambda f: f[0] == H.PING)[-1], (H.PING, 1, 0, b"abcdefgh"))
c.send(H.frame(H.PRIORITY, 0, 9, b"\x00\x00\x00\x00\x10"))      # idle stream: allowed
c.send(H.frame(H.PING, 0, 0, b"zzzzzzzz"))
eq("PRIORITY read and ignored", c.frames(1.0, until=lambda f: f[0] == H.PING)[-1][3], b"zzzzzzzz")
c.close()

# A bad preface is not HTTP/2: the HTTP/1.1 side answers and closes.
s = socket.create_connection((HOST, PORT), timeout=5)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
resp = b""
while True:
    try:
        d = s.recv(4096)
    except socket.timeout:
        break
    if not d:
        break
    resp += d
s.close()
check("bad preface: HTTP/1.1 505", resp.startswith(b"HTTP/1.1 505") or resp.startswith(b"HTTP/1.0 505"), resp[:60])


def conn_error(what, frames, code, settings_frame=None):
    c = H.Client(HOST, PORT, settings_frame=settings_frame)
    c.send(frames)
    g = goaway_of(c)
    check(what + ": GOAWAY", g is not None, g)
    eq(what + ": error code", g[1], code)
    c.frames(2.0)
    check(what + ": connection closed", c.eof)
    c.close()


conn_error("preface then PING instead of SETTINGS", b"", PROTOCOL_ERROR,
           settings_frame=H.frame(H.PING, 0, 0, b"12345678"))
conn_error("frame over SETTINGS_MAX_FRAME_SIZE", H.frame(H.PING, 0, 0, b"x" * 16385), FRAME_SIZE_ERROR)
conn_error("DATA on an idle stream", H.frame(H.DATA, 0, 5, b"hi"), PROTOCOL_ERROR)
conn_error("HEADERS on an even stream", H.frame(H.HEADERS, 4, 2, hpack.encode(H.listen_headers())), PROTOCOL_ERROR)
conn_error("WINDOW_UPDATE of 0", H.frame(H.WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), PROTOCOL_ERROR)
conn_error("INITIAL_WINDOW_SIZE 2^31", H.settings(initial_window_size=1 << 31), FLOW_CONTROL_ERROR)
conn_error("PING of 7 bytes", H.frame(H.PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR)
conn_error("CONTINUATION without HEADERS", H.frame(H.CONTINUATION, 4, 1, b""), PROTOCOL_ERROR)
conn_error("HPACK index beyond both tables", H.frame(H.HEADERS, 5, 1, b"\xff\x80\x01"), COMPRESSION_ERROR)
conn_error("HPACK bad Huffman padding", H.frame(H.HEADERS, 5, 1, b"\x00\x81\x00\x81\x00"), COMPRESSION_ERROR)
conn_error("HPACK size update beyond SETTINGS_HEADER_TABLE_SIZE", H.frame(H.HEADERS, 5, 1, b"\x3f\xe1\x7f"),
           COMPRESSION_ERROR)
big = hpack.encode([("x-pad", "p" * 16000)])
conn_error("header block over 64 KiB (CONTINUATION flood)",
           H.frame(H.HEADERS, 0, 1, big) + b"".join(H.frame(H.CONTINUATION, 0, 1, big) for _ in range(4)),
           ENHANCE_YOUR_CALM)

# ------------------------------------------------------------ HPACK and streams

put("h2/a", n=I(1))
put("h2/b", n=I(2))
# Huffman and the dynamic table: the second request refers to the first's entries.
c = H.Client(HOST, PORT)
hdrs = H.listen_headers(extra=[("google-cloud-resource-prefix", DB)])
first, second = H.incremental(hdrs)
call1, call3 = H.Call(c, 1), H.Call(c, 3)
req = H.grpc_msg(fs_proto.encode("ListenRequest", query("h2")))
c.send(H.frame(H.HEADERS, 4, 1, first) + H.frame(H.DATA, 0, 1, req))
c.send(H.frame(H.HEADERS, 4, 3, second) + H.frame(H.DATA, 0, 3, req))
call1.pump(1.0, lambda x: len(x.messages) >= 5)
call3.pump(1.0, lambda x: len(x.messages) >= 5)
eq("literal with incremental indexing + Huffman: Listen works",
   call1.kinds(), ["ADD:1", "change:h2/a", "change:h2/b", "CURRENT:1", "NO_CHANGE"])
eq("indexed fields from the dynamic table: Listen works", call3.kinds(), call1.kinds())
eq("two streams open", wait_streams(2), 2)
# An oversized header list gets 431 on its stream; the connection goes on.
block = hpack.encode(H.listen_headers(extra=[("x-big", "b" * 9000), ("x-big2", "c" * 9000)]))
c.send(H.frame(H.HEADERS, 0, 5, block[:16000]) + H.frame(H.CONTINUATION, 4, 5, block[16000:]))
call5 = H.Call(c, 5)
call5.pump(1.0, lambda x: x.headers is not None)
eq("header list over 16 KiB: 431", (call5.headers or {}).get(":status"), "431")
put("h2/c", n=I(3))
call1.pump(1.0, lambda x: len(x.messages) >= 7)
eq("connection still serves stream 1 after the 431", call1.kinds()[5:], ["change:h2/c", "NO_CHANGE"])
c.send(H.frame(H.RST_STREAM, 0, 3, b"\0\0\0\x08"))
eq("RST_STREAM from the client ends that Listen", wait_streams(1), 1)
c.close()
eq("closing the connection ends its Listen", wait_streams(0), 0)

# Headers split over HEADERS + CONTINUATION are reassembled.
c = H.Client(HOST, PORT)
block = hpack.encode(H.listen_headers(extra=[("google-cloud-resource-prefix", DB), ("x-pad", "q" * 9000)]))
c.send(H.frame(H.HEADERS, 0, 1, block[:5000]) + H.frame(H.CONTINUATION, 0, 1, block[5000:8000]) +
       H.frame(H.CONTINUATION, 4, 1, block[8000:]))
call = H.Call(c, 1)
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", query("h2"))))
call.pump(1.0, lambda x: len(x.messages) >= 6)
eq("HEADERS + 2 CONTINUATION", call.kinds()[:2], ["ADD:1", "change:h2/a"])
c.close()

# Too many streams: the 101st is refused.
c = H.Client(HOST, PORT)
for i in range(101):
    c.headers(1 + 2 * i, H.listen_headers(extra=[("google-cloud-resource-prefix", DB)]))
fs = c.frames(1.0)
rsts = [(f[2], struct.unpack(">I", f[3])[0]) for f in fs if f[0] == H.RST_STREAM]
eq("stream 101 refused (MAX_CONCURRENT_STREAMS)", rsts, [(201, REFUSED_STREAM)])
c.close()
wait_streams(0)

# ------------------------------------------------------------ flow control

put("flow/big", s=S("x" * 3000))
c = H.Client(HOST, PORT, settings_frame=H.settings(initial_window_size=100))
call = H.Call(c, 1)
c.listen(1, query("flow"))
call.pump(1.0)
eq("stream window 100: exactly 100 DATA bytes", call.data_bytes, 100)
c.send(H.frame(H.WINDOW_UPDATE, 0, 1, struct.pack(">I", 1000)))
call.pump(0.5)
eq("WINDOW_UPDATE 1000: 1000 more", call.data_bytes, 1100)
c.send(H.frame(H.WINDOW_UPDATE, 0, 1, struct.pack(">I", 100000)))
call.pump(1.0, lambda x: len(x.messages) >= 4)
eq("the rest then arrives whole", call.kinds(), ["ADD:1", "change:flow/big", "CURRENT:1", "NO_CHANGE"])
c.close()
# The connection window (65535) holds back a large document too.
put("flow/huge", s=S("y" * 200000))
c = H.Client(HOST, PORT, settings_frame=H.settings(initial_window_size=(1 << 31) - 1))
call = H.Call(c, 1)
c.listen(1, query("flow"))
call.pump(1.0)
eq("connection window: 65535 DATA bytes", call.data_bytes, 65535)
c.send(H.frame(H.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)))
call.pump(1.0, lambda x: len(x.messages) >= 5)
eq("after a connection WINDOW_UPDATE", call.kinds()[-2:], ["CURRENT:1", "NO_CHANGE"])
check("max frame size respected", all(len(f[3]) <= 16384 for f in c.frames(0.2)))
c.close()
# Our receive windows: the server replenishes what it consumed.
c = H.Client(HOST, PORT)
call = H.Call(c, 1)
c.listen(1, query("h2"))
pad = H.grpc_msg(fs_proto.encode("ListenRequest", {"database": DB, "labels": {"k": "v" * 16000}}))
for _ in range(8):      # 128 KiB: twice the initial windows
    c.data(1, pad)
fs = c.frames(1.0)
check("WINDOW_UPDATEs for the connection and the stream",
      {f[2] for f in fs if f[0] == H.WINDOW_UPDATE} == {0, 1}, [f[:3] for f in fs])
c.send(H.frame(H.PING, 0, 0, b"stillup!"))
check("no flow-control error", any(f[0] == H.PING and f[3] == b"stillup!" for f in c.frames(1.0)))
c.close()
delete("flow/big")
delete("flow/huge")

# ------------------------------------------------------------ gRPC

c = H.Client(HOST, PORT)
call = H.Call(c, 1)
c.headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/v1/" + ROOT + "/h2/a"),
              (":authority", "x")], True)
call.pump(1.0)
eq("non-gRPC request over HTTP/2: 415 (as the emulator)", call.headers[":status"], "415")
call = H.Call(c, 3)
c.headers(3, H.listen_headers("/google.firestore.v1.Firestore/Commit",
                              extra=[("google-cloud-resource-prefix", DB)]))
call.pump(1.0)
eq("other methods: trailers-only UNIMPLEMENTED", (call.trailers or {}).get("grpc-status"), "12")
call = H.Call(c, 5)
c.listen(5, query("h2"), extra=[])
call.pump(1.0)
eq("no resource-prefix metadata: UNKNOWN (as the emulator)", (call.trailers or {}).get("grpc-status"), "2")
call = H.Call(c, 7)
c.listen(7, None)
c.data(7, b"\x00\x7f\xff\xff\xff")
call.pump(1.0, lambda x: x.trailers is not None)
eq("message prefix over 4 MiB: RESOURCE_EXHAUSTED", call.trailers.get("grpc-status"), "8")
call = H.Call(c, 9)
c.listen(9, None)
c.data(9, H.grpc_msg(b"\x0a\x00", flag=1))
call.pump(1.0, lambda x: x.trailers is not None)
eq("compressed flag without grpc-encoding: INTERNAL", call.trailers.get("grpc-status"), "13")
call = H.Call(c, 11)
c.listen(11, None)
c.data(11, H.grpc_msg(b"\x12\x64\x08"))
call.pump(1.0, lambda x: x.trailers is not None)
eq("bad protobuf: INTERNAL", call.trailers.get("grpc-status"), "13")
call = H.Call(c, 13)
c.listen(13, {"database": "nonsense", "addTarget": query("h2")["addTarget"]})
call.pump(1.0, lambda x: x.trailers is not None)
eq("bad database: INVALID_ARGUMENT", call.trailers.get("grpc-status"), "3")
call = H.Call(c, 15)
c.listen(15, query("h2"), extra=[("google-cloud-resource-prefix", DB), ("grpc-encoding", "gzip")])
call.pump(1.0)
eq("grpc-encoding gzip: UNIMPLEMENTED", (call.trailers or {}).get("grpc-status"), "12")
call = H.Call(c, 17)
c.listen(17, query("h2"), extra=[("google-cloud-resource-prefix", DB), ("grpc-timeout", "300m")])
call.pump(2.0, lambda x: x.trailers is not None)
eq("grpc-timeout 300m: DEADLINE_EXCEEDED", (call.trailers or {}).get("grpc-status"), "4")
c.close()

ctl("config", {"listen": "unimplemented"})
c, call = open_listen(query("h2"))
call.pump(1.0)
eq("config listen=unimplemented: UNIMPLEMENTED", (call.trailers or {}).get("grpc-status"), "12")
c.close()
ctl("config", {"listen": "no_h2"})
c = H.Client(HOST, PORT)
c.frames(1.0)
check("config listen=no_h2: the preface gets HTTP/1.1 505", c.buf.startswith(b"HTTP/1.") and b" 505 " in c.buf[:20], c.buf[:40])
c.close()
ctl("config", {"listen": "ok", "auth": "issued"})
c, call = open_listen(query("h2"), extra=[("google-cloud-resource-prefix", DB), ("authorization", "Bearer nope")])
call.pump(1.0)
eq("auth issued, unknown token: UNAUTHENTICATED", (call.trailers or {}).get("grpc-status"), "16")
c.close()
ctl("config", {"auth": "open"})
ctl("faults", {"mode": "error", "status": "UNAVAILABLE", "match": "Listen", "count": 1})
c, call = open_listen(query("h2"))
call.pump(1.0)
eq("/_test/faults error rule: trailers-only UNAVAILABLE", (call.trailers or {}).get("grpc-status"), "14")
c.close()

# ------------------------------------------------------------ Listen semantics

seq = last_seq()
c, call = open_listen(query("lis", where=lt("n", 10)))
settled(call, 3)
eq("empty collection: ADD, CURRENT, NO_CHANGE", call.kinds(), ["ADD:1", "CURRENT:1", "NO_CHANGE"])
cur, nc = call.messages[1]["targetChange"], call.messages[2]["targetChange"]
check("CURRENT carries a resume token", len(cur.get("resumeToken", b"")) > 0, cur)
check("NO_CHANGE: no target ids, a read_time, the same token",
      nc.get("targetIds", []) == [] and "readTime" in nc and nc["resumeToken"] == cur["resumeToken"], nc)
lg = listen_log(seq)
eq("empty query billed one read", [(r["event"], r["reads"]) for r in lg], [("add", 1)])
seq = last_seq()
put("lis/a", n=I(1), s=S("x"))
settled(call, 5)
eq("added", call.kinds()[3:], ["change:lis/a", "NO_CHANGE"])
dc = call.messages[3]["documentChange"]
eq("document_change: the document", (dc["document"]["name"], dc["document"]["fields"], dc["targetIds"]),
   (ROOT + "/lis/a", {"n": I(1), "s": S("x")}, [1]))
check("read_time increases", call.messages[4]["targetChange"]["readTime"] > nc["readTime"])
put("lis/a", n=I(2), s=S("x"))
settled(call, 7)
eq("updated", call.kinds()[5:], ["change:lis/a", "NO_CHANGE"])
put("lis/b", n=I(3))
put("lis/b", n=I(30))
settled(call, 11)
eq("left the result set: document_remove", call.kinds()[9:], ["remove:lis/b", "NO_CHANGE"])
delete("lis/a")
settled(call, 13)
eq("deleted: document_delete", call.kinds()[11:], ["delete:lis/a", "NO_CHANGE"])
eq("document_delete names the target", call.messages[11]["documentDelete"]["removedTargetIds"], [1])
lg = listen_log(seq)
eq("billing: a read per add/update/remove-by-change, none for a delete",
   [(r["event"], r["reads"]) for r in lg], [("change", 1), ("change", 1), ("change", 1), ("change", 1), ("change", 0)])
token = call.messages[-1]["targetChange"]["resumeToken"]
d = ctl("listen")["streams"]
eq("GET /_test/listen: the target and its token",
   [(s["stream"], [(t["targetId"], t["resumeToken"], t["docs"]) for t in s["targets"]]) for s in d],
   [(1, [(1, base64.b64encode(token).decode(), 0)])])
c.close()
wait_streams(0)

# Resume: only what changed since, then the existence filter (count now).
put("lis/c", n=I(4))
put("lis/d", n=I(5))
c, call = open_listen(query("lis", where=lt("n", 10)))
settled(call, 6)
token = call.messages[-1]["targetChange"]["resumeToken"]
c.close()
wait_streams(0)
put("lis/e", n=I(6))
delete("lis/c")
seq = last_seq()
c, call = open_listen(query("lis", where=lt("n", 10), resumeToken=token))
settled(call, 6)
eq("resume: changes since the token, then the filter", call.kinds(),
   ["ADD:1", "change:lis/e", "filter:2", "CURRENT:1", "NO_CHANGE"])
eq("resume billed only the change", [(r["event"], r["reads"]) for r in listen_log(seq)], [("token", 1)])
c.close()
wait_streams(0)
seq = last_seq()
c, call = open_listen(query("lis", where=lt("n", 10), resumeToken=b"not a token"))
settled(call, 6)
eq("unknown token: RESET and everything", call.kinds(),
   ["ADD:1", "RESET:1", "change:lis/d", "change:lis/e", "CURRENT:1", "NO_CHANGE"])
eq("RESET billed as a new query", [(r["event"], r["reads"]) for r in listen_log(seq)], [("reset", 2)])
c.close()
ctl("config", {"resumeWindow": 0})
time.sleep(0.01)
c, call = open_listen(query("lis", where=lt("n", 10), resumeToken=token))
settled(call, 6)
eq("token older than the resume window: RESET", call.kinds()[:2], ["ADD:1", "RESET:1"])
c.close()
ctl("config", {"resumeWindow": 1800})
c, call = open_listen(query("lis", where=lt("n", 10), readTime="2999-01-01T00:00:00Z"))
settled(call, 6)
eq("read_time in the future: RESET", call.kinds()[:2], ["ADD:1", "RESET:1"])
c.close()

# Several targets on one stream, target ids, once, remove, documents.
c = H.Client(HOST, PORT)
call = H.Call(c, 1)
c.listen(1, query("lis", tid=1, where=lt("n", 10)))
settled(call, 5)
n0 = len(call.messages)
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", {"database": DB, "addTarget": {
    "targetId": 2, "documents": {"documents": [ROOT + "/lis/d", ROOT + "/lis/zz"]}}})))
settled(call, n0 + 4)
eq("documents target: missing documents are not sent", call.kinds()[n0:],
   ["ADD:2", "change:lis/d", "CURRENT:2", "NO_CHANGE"])
n0 = len(call.messages)
put("lis/d", n=I(7))
settled(call, n0 + 2)
eq("a document in two targets: one document_change", call.kinds()[n0:], ["change:lis/d", "NO_CHANGE"])
eq("... naming both targets", sorted(call.messages[n0]["documentChange"]["targetIds"]), [1, 2])
n0 = len(call.messages)
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", {"database": DB, "removeTarget": 2})))
settled(call, n0 + 1)
eq("remove_target: REMOVE", call.kinds()[n0:], ["REMOVE:2"])
n0 = len(call.messages)
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", query("lis", tid=3, once=True))))
call.pump(1.0, lambda x: "REMOVE:3" in x.kinds())
eq("once: REMOVE after the snapshot", call.kinds()[n0:][-3:], ["CURRENT:3", "NO_CHANGE", "REMOVE:3"])
n0 = len(call.messages)
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", query("lis", tid=0))))
settled(call, n0 + 1)
eq("target_id 0 after explicit ids: REMOVE", call.kinds()[n0:], ["REMOVE:0"])
ctl("config", {"deny": ["secret"]})
n0 = len(call.messages)
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", query("secret", tid=4))))
settled(call, n0 + 1)
eq("denied collection: REMOVE with PERMISSION_DENIED", (call.kinds()[n0:], call.messages[n0]["targetChange"]["cause"]["code"]),
   (["REMOVE:4"], 7))
ctl("config", {"deny": []})
c.data(1, H.grpc_msg(fs_proto.encode("ListenRequest", query("lis", tid=1))))
call.pump(1.0, lambda x: x.trailers is not None)
eq("duplicate target id: INVALID_ARGUMENT", (call.trailers or {}).get("grpc-status"), "3")
c.close()
c, call = open_listen(query("lis", tid=0))
settled(call, 4)
eq("target_id 0: the server assigns 1", call.kinds()[0], "ADD:1")
c.data(1, b"", True)
call.pump(1.0, lambda x: x.trailers is not None)
eq("client half-close: OK", (call.trailers or {}).get("grpc-status"), "0")
c.close()

# Every Value kind survives the protobuf encoding.
vals = {"null": {"nullValue": None}, "t": {"booleanValue": True}, "f": {"booleanValue": False},
        "i": I(-9223372036854775808), "z": I(0), "d": {"doubleValue": -2.5},
        "ts": {"timestampValue": "2024-01-02T03:04:05.123456Z"}, "s": S("héllo ✓"),
        "by": {"bytesValue": "AAH6/w=="}, "ref": {"referenceValue": ROOT + "/x/y"},
        "geo": {"geoPointValue": {"latitude": 51.5, "longitude": -0.12}},
        "arr": {"arrayValue": {"values": [I(1), S("two"), {"mapValue": {}}]}},
        "earr": {"arrayValue": {}}, "m": {"mapValue": {"fields": {"k": {"mapValue": {"fields": {"n": I(1)}}}}}}}
put("kinds/all", **vals)
c, call = open_listen(query("kinds"))
settled(call, 4)
got = call.messages[1]["documentChange"]["document"]["fields"]
got["null"] = {"nullValue": None} if got["null"] == {"nullValue": "NULL_VALUE"} else got["null"]
eq("every Value kind", got, vals)
c.close()

# latencyMs delays Listen messages too (a lower bound only).
ctl("config", {"latencyMs": 300})
t0 = time.monotonic()
c, call = open_listen(query("kinds"))
settled(call, 4)
check("latencyMs 300: the snapshot takes at least 0.3 s", time.monotonic() - t0 >= 0.3 and len(call.messages) == 4)
c.close()
ctl("config", {"latencyMs": 0})
wait_streams(0)

# ------------------------------------------------------------ test-only faults


def faulted(action, **kw):
    c, call = open_listen(query("lis", where=lt("n", 10)))
    call.pump(1.0, lambda x: "NO_CHANGE" in x.kinds())
    eq("fault %s: one stream open" % action, wait_streams(1), 1)
    r = ctl("listen", dict(kw, action=action))
    eq("fault %s acts on the stream" % action, r["streams"], 1)
    return c, call


c, call = faulted("status", code=14, message="going away")
call.pump(2.0, lambda x: x.trailers is not None)
eq("status 14", (call.trailers.get("grpc-status"), call.trailers.get("grpc-message")), ("14", "going away"))
c.close()
c, call = faulted("status", code=4)
call.pump(2.0, lambda x: x.trailers is not None)
eq("status 4", call.trailers.get("grpc-status"), "4")
c.close()
c, call = faulted("rst")
call.pump(2.0, lambda x: x.rst is not None)
eq("rst: RST_STREAM INTERNAL_ERROR", call.rst, 2)
eq("rst: the stream is gone", wait_streams(0), 0)
c.close()
c, call = faulted("goaway")
g = goaway_of(c)
eq("goaway: GOAWAY NO_ERROR naming stream 1", g, (1, 0))
c.frames(2.0)
check("goaway: then the connection closes", c.eof)
c.close()
c, call = faulted("drop")
fs = c.frames(2.0)
check("drop: closed without GOAWAY", c.eof and not any(f[0] == H.GOAWAY for f in fs), fs)
c.close()
c, call = faulted("silent")
put("lis/f", n=I(8))
n0 = len(call.messages)
call.pump(1.0)
eq("silent: no message for a change", len(call.messages), n0)
eq("silent: still open", [s["silent"] for s in ctl("listen")["streams"]], [True])
c.send(H.frame(H.PING, 0, 0, b"pingping"))
check("silent: the connection still answers PING", any(f[0] == H.PING for f in c.frames(1.0)))
c.close()
wait_streams(0)
c, call = faulted("oversized", bytes=100000000, junk=1000)
call.pump(1.0)
eq("oversized: a prefix claiming 100000000 bytes", struct.unpack(">I", call.raw[1:5])[0], 100000000)
eq("oversized: then 1000 bytes of junk", len(call.raw), 1005)
c.close()
c = H.Client(HOST, PORT)
call = H.Call(c, 1)
c.listen(1, query("lis", where=lt("n", 10)))
settled(call, 5)
ctl("listen", {"action": "malformed"})
try:
    call.pump(1.0)
    check("malformed: decoding it fails", False)
except fs_proto.ProtoError:
    npass += 1
c.close()
wait_streams(0)
c, call = faulted("flood", count=50)
n0 = len(call.messages)
docs = n0 - 3
settled(call, n0 + 50)
eq("flood 50: 50 document changes and no snapshot", call.kinds()[n0:], ["change:lis/flood%09d" % i for i in range(50)])
c.close()
c, call = faulted("wrong_target")
settled(call, n0 + 3)
eq("wrong_target: target 1001", call.messages[n0]["documentChange"]["targetIds"], [1001])
c.close()
c, call = faulted("filter")
settled(call, n0 + 1)
eq("filter: a count one too many", call.kinds()[n0], "filter:%d" % (docs + 1))
c.close()
c, call = faulted("flood", count=-1)
call.pump(1.0)
check("endless flood: held back by flow control (65535 bytes)", call.data_bytes <= 65535 and len(call.messages) > 100,
      call.data_bytes)
c.close()
eq("endless flood ends with the connection", wait_streams(0), 0)

print("t_fsserver_h2: %d assertions passed" % npass)
