#!/usr/bin/env python3
"""Raw REST checks of tests/fsserver.py (run by tests/t_fsserver_api.sh).

    python3 tests/t_fsserver_api.py SERVER_PID HOST PORT

Asserts status codes, status strings, body shapes and semantics that p2pcat's
libcurl client relies on, with real values.  Exit 0 when every assertion holds.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

PID, HOST, PORT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
PROJ = "demo-api"
ROOT = "projects/%s/databases/(default)/documents" % PROJ
V1 = "/v1/" + ROOT
npass = 0


def check(what, cond, detail=None):
    global npass
    if not cond:
        sys.stderr.write("FAIL: %s%s\n" % (what, "" if detail is None else ": %r" % (detail,)))
        sys.exit(1)
    npass += 1


def eq(what, got, want):
    check(what, got == want, {"got": got, "want": want})


class Client:
    def __init__(self):
        self.conn = None

    def req(self, method, path, body=None, headers=None, raw=None, chunked=False):
        """-> (status, parsed JSON or text).  Reuses one keep-alive connection."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if chunked:
            h["Transfer-Encoding"] = "chunked"
            data = iter([data[:7], data[7:]])
        self.conn.request(method, path, body=data, headers=h, encode_chunked=chunked)
        r = self.conn.getresponse()
        text = r.read().decode()
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


C = Client()
req = C.req


def q(**kw):
    return "?" + urllib.parse.urlencode(kw, doseq=True)


def err(what, resp, code, status, array=False):
    s, b = resp
    eq(what + ": HTTP code", s, code)
    if array:
        check(what + ": streaming error is a one-element array", isinstance(b, list) and len(b) == 1, b)
        b = b[0]
    check(what + ": error body", isinstance(b, dict) and set(b) == {"error"}, b)
    e = b["error"]
    eq(what + ": error keys", sorted(e), ["code", "message", "status"])
    eq(what + ": error.code", e["code"], code)
    eq(what + ": error.status", e["status"], status)
    check(what + ": error.message", isinstance(e["message"], str) and e["message"], e)
    return e["message"]


def ctl(method, path, body=None):
    s, b = req(method, "/_test/" + path, body)
    eq("control %s %s" % (method, path), s, 200)
    return b


def log_since(seq):
    return ctl("GET", "log?since=%d" % seq)


def last_seq():
    r = ctl("GET", "log")["requests"]
    return r[-1]["seq"] if r else 0


def fields(**kw):
    return {"fields": kw}


S = lambda x: {"stringValue": x}
I = lambda x: {"integerValue": str(x)}

# ------------------------------------------------------------ basics
s, b = req("GET", "/")
eq("GET / (emulator readiness)", (s, b), (200, "Ok\n"))

# create with every value type; what comes back is normalised
vals = {
    "i": {"integerValue": "42"}, "inum": {"integerValue": 7},
    "imin": {"integerValue": "-9223372036854775808"},
    "imax": {"integerValue": "9223372036854775807"},
    "d": {"doubleValue": 2.5}, "dint": {"doubleValue": 3.0},
    "nan": {"doubleValue": "NaN"}, "inf": {"doubleValue": "-Infinity"},
    "t": {"booleanValue": True},
    "n": {"nullValue": None}, "nn": {"nullValue": "NULL_VALUE"},
    "ts": {"timestampValue": "2024-01-02T03:04:05.123456789+01:00"},
    "ts0": {"timestampValue": "2024-01-02T03:04:05Z"},
    "ts3": {"timestampValue": "2024-01-02T03:04:05.5Z"},
    "s": S("héllo"), "by": {"bytesValue": "AAH6_w"},
    "ref": {"referenceValue": ROOT + "/peers/bob"},
    "geo": {"geoPointValue": {"latitude": 51.5, "longitude": -0.12}},
    "arr": {"arrayValue": {"values": [I(1), S("x"), {"mapValue": {"fields": {"a": I(2)}}}]}},
    "earr": {"arrayValue": {"values": []}}, "earr2": {"arrayValue": {}},
    "m": {"mapValue": {"fields": {"k": S("v"), "inner": {"mapValue": {}}}}},
    "weird key!": S("quoted"),
}
s, d = req("POST", V1 + "/peers" + q(documentId="alice"), {"fields": vals})
eq("create: 200", s, 200)
eq("create: name", d["name"], ROOT + "/peers/alice")
eq("create: createTime == updateTime", d["createTime"], d["updateTime"])
check("create: times are RFC 3339 Z", d["createTime"].endswith("Z") and "T" in d["createTime"], d)
f = d["fields"]
eq("integerValue stays a string", f["i"], {"integerValue": "42"})
eq("integerValue number -> string", f["inum"], {"integerValue": "7"})
eq("int64 min", f["imin"], {"integerValue": "-9223372036854775808"})
eq("int64 max", f["imax"], {"integerValue": "9223372036854775807"})
eq("doubleValue", f["d"], {"doubleValue": 2.5})
eq("whole doubleValue", f["dint"], {"doubleValue": 3})
eq("NaN", f["nan"], {"doubleValue": "NaN"})
eq("-Infinity", f["inf"], {"doubleValue": "-Infinity"})
eq("booleanValue", f["t"], {"booleanValue": True})
eq("nullValue", f["n"], {"nullValue": None})
eq("nullValue from enum name", f["nn"], {"nullValue": None})
eq("timestamp: offset -> Z, rounded down to microseconds", f["ts"], {"timestampValue": "2024-01-02T02:04:05.123456Z"})
eq("timestamp: whole seconds", f["ts0"], {"timestampValue": "2024-01-02T03:04:05Z"})
eq("timestamp: millis printed with 3 digits", f["ts3"], {"timestampValue": "2024-01-02T03:04:05.500Z"})
eq("stringValue utf-8", f["s"], S("héllo"))
eq("bytesValue url-safe unpadded -> standard padded", f["by"], {"bytesValue": "AAH6/w=="})
eq("referenceValue", f["ref"], {"referenceValue": ROOT + "/peers/bob"})
eq("geoPointValue", f["geo"], {"geoPointValue": {"latitude": 51.5, "longitude": -0.12}})
eq("arrayValue", f["arr"], vals["arr"])
eq("empty array (values: [])", f["earr"], {"arrayValue": {}})
eq("empty array ({})", f["earr2"], {"arrayValue": {}})
eq("mapValue with empty map", f["m"], {"mapValue": {"fields": {"k": S("v"), "inner": {"mapValue": {}}}}})
eq("any UTF-8 field name", f["weird key!"], S("quoted"))
created = d

s, g = req("GET", V1 + "/peers/alice")
eq("get: 200", s, 200)
eq("get returns what create returned", g, created)
s, g = req("GET", V1 + "/peers/alice" + q(**{"mask.fieldPaths": ["i", "m.k"]}))
eq("get with mask", g["fields"], {"i": I(42), "m": {"mapValue": {"fields": {"k": S("v")}}}})

# errors
err("create existing", req("POST", V1 + "/peers" + q(documentId="alice"), fields()), 409, "ALREADY_EXISTS")
m = err("get missing", req("GET", V1 + "/peers/nobody"), 404, "NOT_FOUND")
check("NOT_FOUND message names the document", "peers/nobody" in m, m)
err("unknown query parameter", req("GET", V1 + "/peers/alice" + q(bogus=1)), 400, "INVALID_ARGUMENT")
err("unknown URL", req("GET", "/v2/whatever"), 404, "NOT_FOUND")

# auto IDs
ids = set()
for _ in range(3):
    s, d = req("POST", V1 + "/peers", fields(x=I(1)))
    eq("auto-id create: 200", s, 200)
    i = d["name"].rsplit("/", 1)[1]
    check("auto id: 20 alphanumerics", len(i) == 20 and i.isalnum(), i)
    ids.add(i)
    req("DELETE", V1 + "/peers/" + i)
eq("auto ids differ", len(ids), 3)

# ------------------------------------------------------------ value validation
def bad_value(what, v, status="INVALID_ARGUMENT"):
    err("reject " + what, req("POST", V1 + "/bad", {"fields": {"f": v}}), 400, status)


bad_value("unknown value key", {"stringValue": "a", "colour": 1})
bad_value("only an unknown value key", {"colour": 1})
bad_value("two value keys", {"stringValue": "a", "integerValue": "1"})
bad_value("empty value", {})
bad_value("integerValue 1.5", {"integerValue": "1.5"})
bad_value("integerValue 2^63", {"integerValue": "9223372036854775808"})
bad_value("integerValue -2^63-1", {"integerValue": "-9223372036854775809"})
bad_value("integerValue junk", {"integerValue": "12abc"})
bad_value("integerValue true", {"integerValue": True})
bad_value("doubleValue junk", {"doubleValue": "fast"})
bad_value("booleanValue string", {"booleanValue": "true"})
bad_value("nullValue 1", {"nullValue": 1})
bad_value("timestamp without zone", {"timestampValue": "2024-01-02T03:04:05"})
bad_value("timestamp 10 fraction digits", {"timestampValue": "2024-01-02T03:04:05.1234567891Z"})
bad_value("timestamp Feb 30", {"timestampValue": "2024-02-30T03:04:05Z"})
bad_value("timestamp year 0", {"timestampValue": "0000-12-31T23:59:59Z"})
bad_value("bytes not base64", {"bytesValue": "!!!!"})
bad_value("bytes bad length", {"bytesValue": "AAAAA"})
bad_value("stringValue number", {"stringValue": 5})
bad_value("array in array", {"arrayValue": {"values": [{"arrayValue": {}}]}})
bad_value("latitude 91", {"geoPointValue": {"latitude": 91, "longitude": 0}})
bad_value("referenceValue not a document", {"referenceValue": "projects/x/databases/(default)/documents/c"})
bad_value("unknown key in mapValue", {"mapValue": {"fields": {}, "extra": 1}})
def nest(n):
    v = I(1)
    for _ in range(n - 1):
        v = {"mapValue": {"fields": {"m": v}}}
    return v


eq("maps nested 20 deep are fine", req("POST", V1 + "/deep" + q(documentId="d20"), {"fields": {"f": nest(20)}})[0], 200)
req("DELETE", V1 + "/deep/d20")
bad_value("maps nested 21 deep", nest(21))
bad_value("arrays count towards depth", {"arrayValue": {"values": [nest(20)]}})
err("document name over 6 KiB", req("POST", V1 + "/" + "/".join(["c", "d" * 1400] * 4) + "/c" + q(documentId="x" * 1400), fields()), 400, "INVALID_ARGUMENT")
err("reserved field name", req("POST", V1 + "/bad", {"fields": {"__x__": I(1)}}), 400, "INVALID_ARGUMENT")
err("empty field name", req("POST", V1 + "/bad", {"fields": {"": I(1)}}), 400, "INVALID_ARGUMENT")
err("reserved nested field name", req("POST", V1 + "/bad", {"fields": {"m": {"mapValue": {"fields": {"__y__": I(1)}}}}}), 400, "INVALID_ARGUMENT")
err("unknown document key", req("POST", V1 + "/bad", {"fields": {}, "colour": 1}), 400, "INVALID_ARGUMENT")
err("invalid JSON", req("POST", V1 + "/bad", raw=b"{\"fields\":"), 400, "INVALID_ARGUMENT")
err("bare NaN literal", req("POST", V1 + "/bad", raw=b'{"fields":{"f":{"doubleValue":NaN}}}'), 400, "INVALID_ARGUMENT")
err("duplicate JSON key", req("POST", V1 + "/bad", raw=b'{"fields":{"f":{"stringValue":"a","stringValue":"b"}}}'), 400, "INVALID_ARGUMENT")
err("lone surrogate", req("POST", V1 + "/bad", raw=b'{"fields":{"f":{"stringValue":"\\ud800"}}}'), 400, "INVALID_ARGUMENT")
err("JSON array body", req("POST", V1 + "/bad", raw=b"[]"), 400, "INVALID_ARGUMENT")
s, d = req("GET", V1 + "/bad")
eq("nothing was created by rejected writes", (s, d), (200, {}))

# ------------------------------------------------------------ IDs
for bad in ("a/b", ".", "..", "__x__", "__"+"y"*3+"__", "é" * 751):
    err("reject document id %r" % bad[:12], req("POST", V1 + "/ids" + q(documentId=bad), fields()), 400, "INVALID_ARGUMENT")
err("reject reserved collection id", req("POST", V1 + "/__c__" + q(documentId="x"), fields()), 400, "INVALID_ARGUMENT")
err("reject reserved id in a GET path", req("GET", V1 + "/ids/__x__"), 400, "INVALID_ARGUMENT")
for good in ("x" * 1500, "é" * 750, "__x", "x__", "a.b", "...", "with space", "ünï", "_"):
    s, d = req("POST", V1 + "/ids" + q(documentId=good), fields())
    eq("accept document id %r" % good[:12], s, 200)
s, d = req("GET", V1 + "/ids/" + urllib.parse.quote("with space"))
eq("GET an id with a space", s, 200)

# ------------------------------------------------------------ patch and preconditions
P = V1 + "/peers/bob"
err("patch exists=true on a missing doc", req("PATCH", P + q(**{"currentDocument.exists": "true"}), fields(a=I(1))), 404, "NOT_FOUND")
s, d = req("PATCH", P + q(**{"currentDocument.exists": "false"}), fields(a=I(1), b=I(2), m={"mapValue": {"fields": {"x": I(1), "y": I(2)}}}))
eq("patch exists=false creates", s, 200)
t1 = d["updateTime"]
err("patch exists=false on an existing doc", req("PATCH", P + q(**{"currentDocument.exists": "false"}), fields(a=I(9))), 409, "ALREADY_EXISTS")
s, d = req("PATCH", P + q(**{"updateMask.fieldPaths": ["a", "c", "m.y", "zz"]}), fields(a=I(10), c=S("new"), m={"mapValue": {"fields": {"x": I(99)}}}))
eq("patch with mask: 200", s, 200)
eq("mask semantics: set a, add c, delete m.y, keep b and m.x, no zz",
   d["fields"], {"a": I(10), "b": I(2), "c": S("new"), "m": {"mapValue": {"fields": {"x": I(1)}}}})
t2 = d["updateTime"]
check("updateTime increased", t2 > t1, (t1, t2))
eq("createTime unchanged by patch", d["createTime"], t1)
err("patch with stale updateTime", req("PATCH", P + q(**{"currentDocument.updateTime": t1}), fields(a=I(0))), 400, "FAILED_PRECONDITION")
s, d = req("PATCH", P + q(**{"currentDocument.updateTime": t2, "updateMask.fieldPaths": "a"}), fields(a=I(11)))
eq("patch with current updateTime", s, 200)
t3 = d["updateTime"]
s, d = req("PATCH", P + q(**{"updateMask.fieldPaths": "a"}), fields(a=I(11)))
eq("no-op patch keeps updateTime (WriteResult semantics)", d["updateTime"], t3)
s, d = req("PATCH", P, fields(only=S("this")))
eq("patch without mask replaces the document", d["fields"], {"only": S("this")})
err("patch with both preconditions", req("PATCH", P + q(**{"currentDocument.exists": "true", "currentDocument.updateTime": t3}), fields()), 400, "INVALID_ARGUMENT")
err("updateTime precondition on a missing doc", req("PATCH", V1 + "/peers/nope" + q(**{"currentDocument.updateTime": t3}), fields()), 400, "FAILED_PRECONDITION")
s, d = req("PATCH", P + q(**{"updateMask.fieldPaths": "`odd.name`"}), {"fields": {"odd.name": I(5)}})
eq("quoted field path in mask", d["fields"].get("odd.name"), I(5))
err("bad field path in mask", req("PATCH", P + q(**{"updateMask.fieldPaths": "a..b"}), fields()), 400, "INVALID_ARGUMENT")
err("bad currentDocument.exists", req("PATCH", P + q(**{"currentDocument.exists": "yes"}), fields()), 400, "INVALID_ARGUMENT")

# strictly increasing updateTime over fast writes
last = ""
mono = True
for k in range(30):
    s, d = req("PATCH", V1 + "/clock/c", fields(k=I(k)))
    mono = mono and d["updateTime"] > last and len(d["updateTime"]) <= 27
    last = d["updateTime"]
check("30 fast writes: strictly increasing updateTime", mono)

# delete
err("delete exists=true on a missing doc", req("DELETE", V1 + "/peers/ghost" + q(**{"currentDocument.exists": "true"})), 404, "NOT_FOUND")
eq("delete a missing doc is fine", req("DELETE", V1 + "/peers/ghost"), (200, {}))
s, d = req("GET", P)
err("delete with stale updateTime", req("DELETE", P + q(**{"currentDocument.updateTime": t1})), 400, "FAILED_PRECONDITION")
eq("delete with current updateTime", req("DELETE", P + q(**{"currentDocument.updateTime": d["updateTime"]})), (200, {}))
err("deleted doc is gone", req("GET", P), 404, "NOT_FOUND")

# ------------------------------------------------------------ list
for k in range(5):
    req("PATCH", V1 + "/list/d%d" % k, fields(n=I(k), rev=I(10 - k)))
req("PATCH", V1 + "/list/d2/sub/s1", fields(x=I(1)))
req("PATCH", V1 + "/list2/gone/sub/s1", fields(x=I(1)))
s, d = req("GET", V1 + "/list")
eq("list: all five, by name", [x["name"].rsplit("/", 1)[1] for x in d["documents"]], ["d0", "d1", "d2", "d3", "d4"])
check("list without more: no nextPageToken", "nextPageToken" not in d, d.keys())
s, d = req("GET", V1 + "/list" + q(pageSize=2))
eq("list page 1", [x["fields"]["n"] for x in d["documents"]], [I(0), I(1)])
tok = d["nextPageToken"]
s, d = req("GET", V1 + "/list" + q(pageSize=2, pageToken=tok))
eq("list page 2", [x["fields"]["n"] for x in d["documents"]], [I(2), I(3)])
s, d = req("GET", V1 + "/list" + q(pageSize=2, pageToken=d["nextPageToken"]))
eq("list page 3", [x["fields"]["n"] for x in d["documents"]], [I(4)])
check("last page: no nextPageToken", "nextPageToken" not in d, d)
s, d = req("GET", V1 + "/list" + q(pageSize=5))
check("a full page carries a nextPageToken", "nextPageToken" in d, d.keys())
eq("... and the page after it is {}", req("GET", V1 + "/list" + q(pageSize=5, pageToken=d["nextPageToken"])), (200, {}))
s, d = req("GET", V1 + "/list" + q(orderBy="rev"))
eq("list orderBy", [x["fields"]["n"] for x in d["documents"]], [I(4), I(3), I(2), I(1), I(0)])
s, d = req("GET", V1 + "/list" + q(orderBy="__name__ desc"))
eq("list orderBy __name__ desc", [x["fields"]["n"] for x in d["documents"]], [I(4), I(3), I(2), I(1), I(0)])
eq("list an empty collection: {}", req("GET", V1 + "/nothing-here"), (200, {}))
eq("list a subcollection", [x["name"] for x in req("GET", V1 + "/list/d2/sub")[1]["documents"]], [ROOT + "/list/d2/sub/s1"])
eq("list: a parent with only subcollections is not a document", req("GET", V1 + "/list2"), (200, {}))
eq("list showMissing", req("GET", V1 + "/list2" + q(showMissing="true"))[1], {"documents": [{"name": ROOT + "/list2/gone"}]})
err("list with a bad page token", req("GET", V1 + "/list" + q(pageToken="!!")), 400, "INVALID_ARGUMENT")

# ------------------------------------------------------------ runQuery
for name, to, seq in (("o1", "bob", 1), ("o2", "bob", 2), ("o3", "eve", 3), ("o4", "bob", 4)):
    req("PATCH", V1 + "/inbox/bob/offers/" + name, fields(to=S(to), seq=I(seq), tag={"arrayValue": {"values": [S("t%d" % seq)]}}))
req("PATCH", V1 + "/inbox/eve/offers/o9", fields(to=S("eve"), seq=I(9)))


def rq(sq, parent="/inbox/bob"):
    return req("POST", V1 + parent + ":runQuery", {"structuredQuery": sq})


def names(resp):
    s, b = resp
    eq("runQuery: 200", s, 200)
    check("runQuery: a JSON array", isinstance(b, list), b)
    for r in b:
        check("runQuery element keys", set(r) - {"skippedResults"} in ({"document", "readTime"}, {"readTime"}), r)
    return [r["document"]["name"].rsplit("/", 1)[1] for r in b if "document" in r]


FF = lambda f, op, v: {"fieldFilter": {"field": {"fieldPath": f}, "op": op, "value": v}}
FROM = [{"collectionId": "offers"}]
eq("where EQUAL", names(rq({"from": FROM, "where": FF("to", "EQUAL", S("bob"))})), ["o1", "o2", "o4"])
eq("where EQUAL + limit", names(rq({"from": FROM, "where": FF("to", "EQUAL", S("bob")), "limit": 2})), ["o1", "o2"])
eq("limit as Int32Value object", names(rq({"from": FROM, "limit": {"value": 1}})), ["o1"])
eq("LESS_THAN", names(rq({"from": FROM, "where": FF("seq", "LESS_THAN", I(3))})), ["o1", "o2"])
eq("GREATER_THAN_OR_EQUAL with a double", names(rq({"from": FROM, "where": FF("seq", "GREATER_THAN_OR_EQUAL", {"doubleValue": 2.5})})), ["o3", "o4"])
eq("NOT_EQUAL", names(rq({"from": FROM, "where": FF("to", "NOT_EQUAL", S("bob"))})), ["o3"])
eq("IN", names(rq({"from": FROM, "where": FF("seq", "IN", {"arrayValue": {"values": [I(1), I(4)]}})})), ["o1", "o4"])
eq("ARRAY_CONTAINS", names(rq({"from": FROM, "where": FF("tag", "ARRAY_CONTAINS", S("t2"))})), ["o2"])
eq("compositeFilter AND (equalities)", names(rq({"from": FROM, "where": {"compositeFilter": {"op": "AND", "filters": [FF("to", "EQUAL", S("bob")), FF("seq", "EQUAL", I(2))]}}})), ["o2"])
eq("orderBy DESC", names(rq({"from": FROM, "orderBy": [{"field": {"fieldPath": "seq"}, "direction": "DESCENDING"}]})), ["o4", "o3", "o2", "o1"])
eq("startAfter cursor", names(rq({"from": FROM, "orderBy": [{"field": {"fieldPath": "seq"}}], "startAt": {"values": [I(2)], "before": False}})), ["o3", "o4"])
eq("offset", names(rq({"from": FROM, "offset": 3})), ["o4"])
eq("offset: skippedResults on the first element", rq({"from": FROM, "offset": 3})[1][0].get("skippedResults"), 3)
eq("root parent sees no nested offers", names(rq({"from": FROM}, parent="")), [])
eq("allDescendants from the root", names(rq({"from": [{"collectionId": "offers", "allDescendants": True}]}, parent="")), ["o1", "o2", "o3", "o4", "o9"])
s, b = rq({"from": FROM, "where": FF("to", "EQUAL", S("nobody"))})
eq("no match: exactly [{readTime}]", (s, len(b), list(b[0])), (200, 1, ["readTime"]))
s, b = rq({"from": FROM, "select": {"fields": [{"fieldPath": "seq"}]}, "limit": 1})
eq("select projection", b[0]["document"]["fields"], {"seq": I(1)})
err("query needing a composite index", rq({"from": FROM, "where": FF("to", "EQUAL", S("bob")), "orderBy": [{"field": {"fieldPath": "seq"}}]}), 400, "FAILED_PRECONDITION", array=True)
err("runQuery without from", rq({"where": FF("to", "EQUAL", S("bob"))}), 400, "INVALID_ARGUMENT", array=True)
err("runQuery bad op", rq({"from": FROM, "where": FF("to", "LIKE", S("b"))}), 400, "INVALID_ARGUMENT", array=True)
err("runQuery unknown key (front-end error: a plain object)", req("POST", V1 + ":runQuery", {"structuredQuery": {"from": FROM}, "extra": 1}), 400, "INVALID_ARGUMENT")
err("runQuery on a collection path", req("POST", V1 + "/inbox:runQuery", {"structuredQuery": {"from": FROM}}), 400, "INVALID_ARGUMENT", array=True)

# aggregations and listCollectionIds
s, b = req("POST", V1 + "/inbox/bob:runAggregationQuery", {"structuredAggregationQuery": {
    "structuredQuery": {"from": FROM, "where": FF("to", "EQUAL", S("bob"))},
    "aggregations": [{"alias": "n", "count": {}}, {"alias": "s", "sum": {"field": {"fieldPath": "seq"}}},
                     {"alias": "a", "avg": {"field": {"fieldPath": "seq"}}}]}})
eq("runAggregationQuery", (s, b[0]["result"]["aggregateFields"]), (200, {"n": I(3), "s": I(7), "a": {"doubleValue": 7 / 3}}))
check("listCollectionIds sees inbox", "inbox" in req("POST", V1 + ":listCollectionIds", {})[1]["collectionIds"])
eq("listCollectionIds under a document", req("POST", V1 + "/inbox/bob:listCollectionIds", {}), (200, {"collectionIds": ["offers"]}))

# ------------------------------------------------------------ commit
COMMIT = V1 + ":commit"


def upd(name, flds, **kw):
    w = {"update": {"name": ROOT + "/" + name, "fields": flds}}
    w.update(kw)
    return w


s, d = req("POST", COMMIT, {"writes": [
    upd("tx/a", {"v": I(1)}, currentDocument={"exists": False}),
    upd("tx/b", {"v": I(2)}),
    upd("tx/a", {"w": I(3)}, updateMask={"fieldPaths": ["w"]}, currentDocument={"exists": True}),
    {"delete": ROOT + "/tx/none"},
    upd("tx/c", {}, updateTransforms=[{"fieldPath": "n", "increment": I(5)}, {"fieldPath": "at", "setToServerValue": "REQUEST_TIME"}]),
]})
eq("commit: 200", s, 200)
eq("commit: response keys", sorted(d), ["commitTime", "writeResults"])
eq("commit: one result per write", len(d["writeResults"]), 5)
eq("commit: every update has updateTime == commitTime", [r.get("updateTime") for r in d["writeResults"]],
   [d["commitTime"]] * 3 + [None, d["commitTime"]])
eq("commit: delete result is {}", d["writeResults"][3], {})
eq("commit: transformResults", d["writeResults"][4]["transformResults"], [I(5), {"timestampValue": d["commitTime"]}])
eq("commit: writes applied in order", req("GET", V1 + "/tx/a")[1]["fields"], {"v": I(1), "w": I(3)})
eq("commit: transform result stored", req("GET", V1 + "/tx/c")[1]["fields"], {"n": I(5), "at": {"timestampValue": d["commitTime"]}})
err("commit: second write fails (exists=true on missing)", req("POST", COMMIT, {"writes": [
    upd("tx/new1", {"v": I(1)}), upd("tx/missing", {"v": I(1)}, currentDocument={"exists": True})]}), 404, "NOT_FOUND")
err("commit is atomic: the first write was undone", req("GET", V1 + "/tx/new1"), 404, "NOT_FOUND")
err("commit: exists=false on existing", req("POST", COMMIT, {"writes": [
    {"delete": ROOT + "/tx/b"}, upd("tx/a", {"v": I(1)}, currentDocument={"exists": False})]}), 409, "ALREADY_EXISTS")
eq("commit is atomic: the delete was undone", req("GET", V1 + "/tx/b")[0], 200)
err("commit: stale updateTime", req("POST", COMMIT, {"writes": [
    upd("tx/a", {"v": I(1)}, currentDocument={"updateTime": "2001-01-01T00:00:00Z"})]}), 400, "FAILED_PRECONDITION")
err("commit: write with two operations", req("POST", COMMIT, {"writes": [
    dict(upd("tx/a", {}), delete=ROOT + "/tx/a")]}), 400, "INVALID_ARGUMENT")
err("commit: document in another database", req("POST", COMMIT, {"writes": [
    {"update": {"name": "projects/other/databases/(default)/documents/tx/a", "fields": {}}}]}), 400, "INVALID_ARGUMENT")
err("commit: bad document name", req("POST", COMMIT, {"writes": [{"delete": ROOT + "/tx"}]}), 400, "INVALID_ARGUMENT")
err("commit: unknown write key", req("POST", COMMIT, {"writes": [dict(upd("tx/a", {}), bogus=1)]}), 400, "INVALID_ARGUMENT")
s, d = req("POST", COMMIT, {})
eq("empty commit: only commitTime", (s, list(d)), (200, ["commitTime"]))
s, d = req("POST", V1 + ":commit", {"writes": [upd("tx/b", {"v": I(2)})]})
eq("commit of an unchanged doc keeps its updateTime", d["writeResults"][0]["updateTime"] < d["commitTime"], True)

# beginTransaction / commit with transaction / rollback
s, d = req("POST", V1 + ":beginTransaction", {})
txn = d["transaction"]
eq("beginTransaction", (s, list(d)), (200, ["transaction"]))
s, d = req("POST", COMMIT, {"writes": [upd("tx/t", {"v": I(1)})], "transaction": txn})
eq("commit in a transaction", s, 200)
err("transaction is single-use", req("POST", COMMIT, {"writes": [], "transaction": txn}), 400, "INVALID_ARGUMENT")
s, d = req("POST", V1 + ":beginTransaction", {})
eq("rollback", req("POST", V1 + ":rollback", {"transaction": d["transaction"]}), (200, {}))

# optimistic transactions: a read document that changes ABORTs the commit
s, d = req("POST", V1 + ":batchGet", {"documents": [ROOT + "/tx/a"], "newTransaction": {"readWrite": {}}})
eq("batchGet newTransaction: first element carries the transaction", sorted(d[0]), ["transaction"])
txn = d[0]["transaction"]
req("PATCH", V1 + "/tx/a" + q(**{"updateMask.fieldPaths": "bump"}), fields(bump=I(1)))
err("commit after a concurrent change: ABORTED", req("POST", COMMIT, {"writes": [upd("tx/a", {"v": I(0)})], "transaction": txn}), 409, "ABORTED")
eq("aborted commit wrote nothing", req("GET", V1 + "/tx/a")[1]["fields"].get("v"), I(1))
s, d = req("POST", V1 + ":beginTransaction", {})
txn = d["transaction"]
eq("get in a transaction", req("GET", V1 + "/tx/a" + q(transaction=txn))[0], 200)
s, b = req("POST", V1 + ":runQuery", {"structuredQuery": {"from": [{"collectionId": "tx"}]}, "transaction": txn})
eq("runQuery in a transaction", s, 200)
s, d = req("POST", COMMIT, {"writes": [upd("tx/a", {"v": I(7)}, updateMask={"fieldPaths": ["v"]})], "transaction": txn})
eq("uncontended transaction commits", s, 200)
s, d = req("POST", V1 + ":beginTransaction", {"options": {"readOnly": {}}})
err("read-only transaction cannot write", req("POST", COMMIT, {"writes": [upd("tx/a", {})], "transaction": d["transaction"]}), 400, "INVALID_ARGUMENT")
err("unknown transaction", req("GET", V1 + "/tx/a" + q(transaction="bm9wZQ==")), 400, "INVALID_ARGUMENT")

# batchWrite: not atomic, per-write status (google.rpc.Status codes)
s, d = req("POST", V1 + ":batchWrite", {"writes": [
    upd("bw/ok", {"v": I(1)}), upd("bw/missing", {"v": I(1)}, currentDocument={"exists": True}), {"delete": ROOT + "/bw/none"}]})
eq("batchWrite: 200", s, 200)
eq("batchWrite: statuses", [x.get("code", 0) for x in d["status"]], [0, 5, 0])
eq("batchWrite: the good write landed", req("GET", V1 + "/bw/ok")[0], 200)

# batchGet
s, d = req("POST", V1 + ":batchGet", {"documents": [ROOT + "/tx/a", ROOT + "/tx/zz"]})
eq("batchGet: 200 array", (s, len(d)), (200, 2))
eq("batchGet found", (d[0]["found"]["name"], sorted(d[0])), (ROOT + "/tx/a", ["found", "readTime"]))
eq("batchGet missing", (d[1]["missing"], sorted(d[1])), (ROOT + "/tx/zz", ["missing", "readTime"]))

# ------------------------------------------------------------ limits
# Document size: name ('limit' 6 + 'ok' 3 + 16) + fields ('a' 2 + len+1, 'b' 2 + len+1) + 32.
n = 1048576 - 25 - 32 - 3 - 3 - 600000
s, d = req("PATCH", V1 + "/limit/ok", fields(a=S("x" * 600000), b=S("x" * n)))
eq("document of exactly 1 MiB (storage-size formula) is accepted", s, 200)
m = err("document of 1 MiB + 1 byte", req("PATCH", V1 + "/limit/ok", fields(a=S("x" * 600000), b=S("x" * (n + 1)))), 400, "INVALID_ARGUMENT")
check("size error names the size", "1,048,577" in m, m)
err("string value over 1 MiB - 89 bytes", req("PATCH", V1 + "/limit/s", fields(a=S("x" * (1048487 + 1)))), 400, "INVALID_ARGUMENT")
eq("string value of exactly 1 MiB - 89 bytes", req("PATCH", V1 + "/limit/s", fields(a=S("x" * 1048487)))[0], 200)
err("over-1MiB via commit", req("POST", COMMIT, {"writes": [upd("limit/big", {"s": S("y" * 1048576)})]}), 400, "INVALID_ARGUMENT")
big = b'{"fields":{"s":{"stringValue":"' + b"z" * (10 * 1024 * 1024) + b'"}}}'
m = err("request body over 10 MiB", req("POST", V1 + "/limit", raw=big), 400, "INVALID_ARGUMENT")
check("payload-size message", "10485760" in m, m)
eq("connection still usable after a large rejected body", req("GET", V1 + "/limit/ok")[0], 200)
s, d = req("POST", V1 + "/chunked" + q(documentId="c1"), fields(a=I(1)), chunked=True)
eq("chunked request body", (s, d.get("fields")), (200, {"a": I(1)}))

# ------------------------------------------------------------ concurrency
import threading
results = []


def racer():
    c = Client()
    results.append(c.req("POST", V1 + "/race" + q(documentId="one"), fields(v=I(1)))[0])
    # compare-and-swap increments with currentDocument.updateTime
    for _ in range(200):
        s, d = c.req("GET", V1 + "/race/counter")
        n = int(d["fields"]["n"]["integerValue"])
        s, _ = c.req("PATCH", V1 + "/race/counter" + q(**{"currentDocument.updateTime": d["updateTime"]}), fields(n=I(n + 1)))
        if s == 200:
            break
        if s != 400:
            results.append(("cas", s))
    c.close()


req("PATCH", V1 + "/race/counter", fields(n=I(0)))
th = [threading.Thread(target=racer) for _ in range(16)]
for t in th:
    t.start()
for t in th:
    t.join()
eq("16 concurrent creates of one ID: one 200, fifteen 409", sorted(results), [200] + [409] * 15)
eq("16 concurrent compare-and-swap increments", req("GET", V1 + "/race/counter")[1]["fields"]["n"], I(16))

# ------------------------------------------------------------ keep-alive
C.close()
req("GET", V1 + "/tx/a")
sock = C.conn.sock
for _ in range(5):
    req("GET", V1 + "/tx/a")
check("HTTP/1.1 keep-alive: one connection for six requests", C.conn.sock is sock and sock is not None)

# ------------------------------------------------------------ billing log
seq = last_seq()
req("GET", V1 + "/tx/a")
req("GET", V1 + "/tx/none")
rq({"from": FROM, "where": FF("to", "EQUAL", S("nobody"))})
rq({"from": FROM})
req("GET", V1 + "/nothing-here")
req("POST", COMMIT, {"writes": [upd("bill/a", {"v": I(1)}), upd("bill/b", {"v": I(1)}), {"delete": ROOT + "/bill/a"}]})
L = log_since(seq)
eq("log: per-request reads", [r["reads"] for r in L["requests"]], [1, 1, 1, 4, 1, 0])
eq("log: ops", [r["op"] for r in L["requests"]], ["get", "get", "runQuery", "runQuery", "list", "commit"])
eq("log: statuses", [r["status"] for r in L["requests"]], [200, 404, 200, 200, 200, 200])
eq("log: totals", L["totals"], {"requests": 6, "reads": 8, "writes": 2, "deletes": 1})
eq("log: one keep-alive connection for all six", len(set(r["conn"] for r in L["requests"])), 1)

# ------------------------------------------------------------ fault injection
ctl("POST", "faults", {"mode": "error", "status": "UNAVAILABLE", "count": 2})
err("fault 1: UNAVAILABLE", req("GET", V1 + "/tx/a"), 503, "UNAVAILABLE")
err("fault 2: UNAVAILABLE", req("GET", V1 + "/tx/a"), 503, "UNAVAILABLE")
eq("after the faults: served", req("GET", V1 + "/tx/a")[0], 200)
ctl("POST", "faults", {"mode": "error", "status": 429, "count": 1, "match": ":commit"})
eq("fault matching :commit leaves GET alone", req("GET", V1 + "/tx/a")[0], 200)
err("fault: RESOURCE_EXHAUSTED", req("POST", COMMIT, {}), 429, "RESOURCE_EXHAUSTED")
ctl("POST", "faults", {"mode": "error", "status": "ABORTED", "method": "POST", "skip": 1})
eq("skip: first matching request served", req("POST", COMMIT, {})[0], 200)
err("fault: ABORTED", req("POST", COMMIT, {}), 409, "ABORTED")
ctl("POST", "faults", {"mode": "drop"})
try:
    req("GET", V1 + "/tx/a")
    check("drop: connection closed without a reply", False)
except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
    check("drop: connection closed without a reply", True)
C.close()
ctl("POST", "faults", {"mode": "lose_reply", "match": "/retry"})
try:
    req("POST", V1 + "/retry" + q(documentId="x"), fields(v=I(1)))
    check("lose_reply: no reply", False)
except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
    check("lose_reply: no reply", True)
C.close()
err("lose_reply: the create happened, a retry sees ALREADY_EXISTS", req("POST", V1 + "/retry" + q(documentId="x"), fields(v=I(1))), 409, "ALREADY_EXISTS")
ctl("POST", "faults", {"mode": "delay", "delayMs": 300})
t0 = time.time()
req("GET", V1 + "/tx/a")
check("delay: >= 300 ms", time.time() - t0 >= 0.3, time.time() - t0)
ctl("POST", "config", {"latencyMs": 100})
t0 = time.time()
req("GET", V1 + "/tx/a")
check("latencyMs: >= 100 ms", time.time() - t0 >= 0.1)
ctl("POST", "config", {"latencyMs": 0})
ctl("POST", "faults", {"mode": "error", "status": "UNAVAILABLE", "count": -1})
ctl("DELETE", "faults")
eq("faults cleared", req("GET", V1 + "/tx/a")[0], 200)
L = log_since(seq)["requests"]
check("log shows the injected faults", [r["fault"] for r in L if r["fault"]][:5] == ["error", "error", "error", "error", "drop"], [r["fault"] for r in L])

# ------------------------------------------------------------ auth
AUTH = "/identitytoolkit.googleapis.com/v1/accounts:signUp"
TOKEN = "/securetoken.googleapis.com/v1/token"
ctl("POST", "config", {"auth": "token:sesame"})
err("required token: none sent -> PERMISSION_DENIED", req("GET", V1 + "/tx/a"), 403, "PERMISSION_DENIED")
err("required token: wrong -> UNAUTHENTICATED", req("GET", V1 + "/tx/a", headers={"Authorization": "Bearer nope"}), 401, "UNAUTHENTICATED")
eq("required token: right", req("GET", V1 + "/tx/a", headers={"Authorization": "Bearer sesame"})[0], 200)
eq("Bearer owner bypasses", req("GET", V1 + "/tx/a", headers={"Authorization": "Bearer owner"})[0], 200)
RQ = {"structuredQuery": {"from": [{"collectionId": "tx"}]}}
err("runQuery, wrong token: front-end 401, a plain object", req("POST", V1 + ":runQuery", RQ, headers={"Authorization": "Bearer nope"}), 401, "UNAUTHENTICATED")
err("runQuery, no token: rules 403, in an array", req("POST", V1 + ":runQuery", RQ), 403, "PERMISSION_DENIED", array=True)
ctl("POST", "config", {"auth": "issued", "tokenLifetime": 2})
s, d = req("POST", AUTH + q(key="k"), {"returnSecureToken": True})
eq("signUp: 200", s, 200)
eq("signUp: keys", sorted(d), ["expiresIn", "idToken", "kind", "localId", "refreshToken"])
eq("signUp: expiresIn is a string of seconds", d["expiresIn"], "2")
check("signUp: idToken is a JWT", d["idToken"].count(".") == 2)
claims = json.loads(base64.urlsafe_b64decode(d["idToken"].split(".")[1] + "=="))
eq("idToken claims: user_id/sub = localId", (claims["user_id"], claims["sub"]), (d["localId"], d["localId"]))
H = {"Authorization": "Bearer " + d["idToken"]}
eq("issued token accepted", req("GET", V1 + "/tx/a", headers=H)[0], 200)
s, lk = req("POST", "/identitytoolkit.googleapis.com/v1/accounts:lookup" + q(key="k"), {"idToken": d["idToken"]})
eq("accounts:lookup", (s, lk["users"][0]["localId"]), (200, d["localId"]))
time.sleep(2.2)
err("expired token -> UNAUTHENTICATED", req("GET", V1 + "/tx/a", headers=H), 401, "UNAUTHENTICATED")
s, lk = req("POST", "/identitytoolkit.googleapis.com/v1/accounts:lookup" + q(key="k"), {"idToken": d["idToken"]})
eq("accounts:lookup with an expired token", (s, lk["error"]["message"]), (400, "TOKEN_EXPIRED"))
s, r = req("POST", TOKEN + q(key="k"), raw=urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": d["refreshToken"]}).encode(),
           headers={"Content-Type": "application/x-www-form-urlencoded"})
eq("refresh: 200", s, 200)
eq("refresh: snake_case keys", sorted(r), ["access_token", "expires_in", "id_token", "project_id", "refresh_token", "token_type", "user_id"])
eq("refresh: user_id, expires_in, token_type", (r["user_id"], r["expires_in"], r["token_type"]), (d["localId"], "2", "Bearer"))
ctl("POST", "config", {"tokenLifetime": 3600})
s, r = req("POST", TOKEN + q(key="k"), raw=("grant_type=refresh_token&refresh_token=" + d["refreshToken"]).encode(),
           headers={"Content-Type": "application/x-www-form-urlencoded"})
H = {"Authorization": "Bearer " + r["id_token"]}
eq("refreshed token accepted", req("GET", V1 + "/tx/a", headers=H)[0], 200)
ctl("POST", "expire_tokens")
err("expire_tokens switch", req("GET", V1 + "/tx/a", headers=H), 401, "UNAUTHENTICATED")
ctl("POST", "expire_tokens", {"refresh": True})
s, b = req("POST", TOKEN + q(key="k"), raw=("grant_type=refresh_token&refresh_token=" + d["refreshToken"]).encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})
eq("revoked refresh token: 400 TOKEN_EXPIRED", (s, b["error"]["message"]), (400, "TOKEN_EXPIRED"))
s, b = req("POST", TOKEN + q(key="k"), raw=b"grant_type=refresh_token&refresh_token=bogus", headers={"Content-Type": "application/x-www-form-urlencoded"})
eq("bad refresh token: 400 INVALID_REFRESH_TOKEN", (s, b["error"]["message"], b["error"]["status"]), (400, "INVALID_REFRESH_TOKEN", "INVALID_ARGUMENT"))
s, b = req("POST", TOKEN + q(key="k"), raw=b"refresh_token=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
eq("missing grant_type", (s, b["error"]["message"]), (400, "MISSING_GRANT_TYPE"))
err("signUp without an API key", req("POST", AUTH, {"returnSecureToken": True}), 403, "PERMISSION_DENIED")
ctl("POST", "config", {"apiKey": "good"})
err("signUp with a wrong API key", req("POST", AUTH + q(key="bad"), {}), 400, "INVALID_ARGUMENT")
ctl("POST", "config", {"auth": "open", "apiKey": None})

# ------------------------------------------------------------ deny switch
ctl("POST", "config", {"deny": ["secret"]})
err("deny: get", req("GET", V1 + "/secret/x"), 403, "PERMISSION_DENIED")
err("deny: nested", req("GET", V1 + "/a/b/secret/x"), 403, "PERMISSION_DENIED")
err("deny: runQuery", req("POST", V1 + ":runQuery", {"structuredQuery": {"from": [{"collectionId": "secret"}]}}), 403, "PERMISSION_DENIED", array=True)
err("deny: commit touching it", req("POST", COMMIT, {"writes": [upd("open/o", {}), upd("secret/s", {})]}), 403, "PERMISSION_DENIED")
err("deny: commit applied nothing", req("GET", V1 + "/open/o"), 404, "NOT_FOUND")
err("deny: Bearer owner is refused too", req("PATCH", V1 + "/secret/x", fields(), headers={"Authorization": "Bearer owner"}), 403, "PERMISSION_DENIED")
eq("deny: other collections fine", req("GET", V1 + "/tx/a")[0], 200)
ctl("POST", "config", {"deny": []})

# ------------------------------------------------------------ dump and emulator clear
docs = ctl("GET", "dump?project=" + PROJ)["documents"]
check("dump lists documents with names and times", docs and all(set(x) >= {"name", "createTime", "updateTime"} for x in docs))
check("dump always carries fields", all("fields" in x for x in docs))
req("PATCH", "/v1/projects/other/databases/(default)/documents/keep/me", fields())
eq("emulator clear", req("DELETE", "/emulator/v1/projects/%s/databases/(default)/documents" % PROJ), (200, {}))
eq("dump after clear", ctl("GET", "dump?project=" + PROJ)["documents"], [])
eq("other projects untouched", [x["name"] for x in ctl("GET", "dump")["documents"]], ["projects/other/databases/(default)/documents/keep/me"])
ctl("POST", "reset")
eq("reset empties the store", ctl("GET", "dump")["documents"], [])

# ------------------------------------------------------------ curl (what p2pcat links)
if shutil.which("curl"):
    body = json.dumps({"fields": {"s": S("q" * 2000000)}})
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue",
                        "-H", "Content-Type: application/json", "--data-binary", "@-",
                        "http://%s:%d%s/curl?documentId=big" % (HOST, PORT, V1)],
                       input=body.encode(), capture_output=True, timeout=60)
    eq("curl with Expect: 100-continue, 2 MB doc -> 400", p.stdout.decode(), "400")
    p = subprocess.run(["curl", "-s", "-w", "\n%{num_connects}", "http://%s:%d%s/a/b" % (HOST, PORT, V1),
                        "http://%s:%d%s/a/c" % (HOST, PORT, V1)], capture_output=True, timeout=60)
    eq("curl reuses the connection for two URLs", p.stdout.decode().rsplit("\n", 1)[1], "0")

C.close()
print("t_fsserver_api: %d assertions passed" % npass)
