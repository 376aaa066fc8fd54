#!/usr/bin/env python3
"""fsserver.py - a local stand-in for Google Cloud Firestore's v1 REST API
(and a minimal Firebase Auth / Identity Toolkit emulator), for p2pcat's tests.

    python3 tests/fsserver.py --port 0 --port-file FILE [--host 127.0.0.1]

It writes the chosen port to FILE once it is listening, serves HTTP/1.1 with
keep-alive from one thread per connection, and exits 0 on SIGTERM/SIGINT.
On the same port, a connection that opens with the HTTP/2 preface (prior
knowledge, as Google's SDKs speak to the emulator) is served gRPC: Listen.
Python 3 standard library only (with tests/h2conn.py, hpack.py, fs_proto.py).

WHAT IS FAITHFUL (to the REST surface of real Firestore and the official
emulator; see the googleapis google/firestore/v1 protos and the REST reference)
  /v1/projects/{p}/databases/{db}/documents/...
    GET    doc                 documents.get (mask.fieldPaths)
    GET    collection          documents.list (pageSize, pageToken, orderBy,
                               mask.fieldPaths, showMissing); an empty result is {};
                               a full page always has a nextPageToken
    POST   collection          documents.createDocument (?documentId=, else a
                               20-character auto ID)
    PATCH  doc                 documents.patch (updateMask.fieldPaths, mask,
                               currentDocument.exists / .updateTime)
    DELETE doc                 documents.delete (currentDocument preconditions)
    POST   ...documents[/c/d]:runQuery           JSON array of {document,readTime},
                               [{readTime}] when nothing matches (skippedResults
                               on the first element when an offset skipped any)
    POST   ...documents[/c/d]:runAggregationQuery  count / sum / avg
    POST   ...documents:commit  writes (update + updateMask + updateTransforms,
                               delete, verify, transform) applied in order,
                               atomically, all with the same commitTime
    POST   ...documents:batchWrite  (not atomic: writeResults + per-write status)
    POST   ...documents:batchGet, :beginTransaction, :rollback,
           ...documents[/c/d]:listCollectionIds
  Values: exactly one value key; integerValue int64 as a JSON string; double
  (NaN/Infinity as strings); timestamps RFC 3339, stored rounded down to
  microseconds and returned in Z form with 0/3/6/9 fractional digits; bytes
  are base64 (invalid base64 is rejected); arrays may not directly contain
  arrays; empty arrays/maps come back as {"arrayValue":{}} / {"mapValue":{}};
  unknown JSON names, two value keys, bad field names and bad IDs (empty,
  > 1500 bytes, containing '/', '.', '..', __.*__) are INVALID_ARGUMENT.
  Errors: HTTP code + {"error":{"code":N,"message":"...","status":"..."}};
  the streaming methods (runQuery, batchGet, runAggregationQuery) wrap
  errors from the backend in a one-element array, as Google's REST gateway
  does; front-end errors (bad token, unparsable JSON, oversized body) stay
  plain objects there too - clients must accept both forms.
  Limits (all INVALID_ARGUMENT): request body > 10 MiB; document > 1 MiB by
  Firestore's storage-size formula (name + fields + 32); a string or bytes
  value > 1 MiB - 89 bytes; maps/arrays nested > 20 deep; a document name
  > 6 KiB; > 100 subcollection levels.  JSON is parsed strictly (no NaN
  literals, no duplicate keys, no lone surrogates).
  createTime/updateTime have microsecond precision; every write that changes
  a document gets a strictly larger updateTime; a write that changes nothing
  keeps the old updateTime (write.proto WriteResult).
  Queries: field / composite (AND, OR) / unary filters, Firestore's type
  order, implicit ordering (inequality fields, then __name__), cursors,
  offset, limit, select, allDescendants, documents missing an ordered field
  are excluded.  Like a fresh production project with no composite indexes,
  a query that would need one answers FAILED_PRECONDITION "The query requires
  an index" (turn off with --composite-indexes or the config switch).
  Preconditions: exists=false on an existing document is 409 ALREADY_EXISTS,
  exists=true on a missing one 404 NOT_FOUND ("No document to update"), a
  stale updateTime (or one on a missing document) 400 FAILED_PRECONDITION.
  Auth: like the emulator, requests are open by default and "Bearer owner"
  bypasses any auth requirement; see the auth switches below.
  DELETE /emulator/v1/projects/{p}/databases/{db}/documents clears a database.
  GET / answers "Ok" (as the emulator does) - handy as a readiness probe.

  Identity Toolkit (paths as with FIREBASE_AUTH_EMULATOR_HOST=host:port):
    POST /identitytoolkit.googleapis.com/v1/accounts:signUp?key=KEY
         -> {kind, idToken, refreshToken, expiresIn:"3600", localId}
    POST /securetoken.googleapis.com/v1/token?key=KEY
         form grant_type=refresh_token&refresh_token=RT
         -> {access_token, expires_in, token_type, refresh_token, id_token,
             user_id, project_id}
    POST /identitytoolkit.googleapis.com/v1/accounts:lookup?key=KEY {idToken}
    POST /identitytoolkit.googleapis.com/v1/accounts:delete?key=KEY {idToken}
  ID tokens are unsigned JWTs (alg "none"), as the Auth emulator issues.

LISTEN (google.firestore.v1.Firestore/Listen, gRPC over plain-text HTTP/2)
  HTTP/2 (RFC 9113) and HPACK (RFC 7541) in h2conn.py / hpack.py; gRPC per
  grpc doc/PROTOCOL-HTTP2.md: application/grpc, 5-byte message prefix,
  grpc-status/grpc-message trailers, trailers-only answers for errors, 4 MiB
  largest request message, grpc-timeout honoured, identity encoding only.
  Other methods answer UNIMPLEMENTED; non-gRPC requests over HTTP/2 get 415
  (as the emulator); a call without google-cloud-resource-prefix or
  x-goog-request-params metadata gets UNKNOWN (as the emulator).  Auth as
  for REST (a bad token ends the call UNAUTHENTICATED); "deny" and query
  errors come back as TargetChange REMOVE with a cause, the stream goes on.
  Semantics as production Firestore has them (googleapis firestore.proto,
  Google's Node SDK watch.ts, the JS SDK's handling of existence filters):
    add_target: ADD, a document_change per matching document, CURRENT (with
      a resume token), then NO_CHANGE with no target ids, a read_time and the
      token: the snapshot is consistent there.  Query and documents targets;
      missing documents of a documents target are not sent; target_id 0 gets
      one assigned (then explicit ids are refused with REMOVE, and vice versa);
      a duplicate id ends the call INVALID_ARGUMENT; once: REMOVE after it.
    changes: on every commit, per stream, a document_change per document
      added or updated (one message naming every target it concerns),
      document_remove for one that left a result set but exists, document_
      delete for a deleted one, then NO_CHANGE with read_time and token.
    resume (resume_token or read_time within the resume window, 30 min by
      default, and issued by this server since its last reset): ADD, a
      document_change for each document that changed or entered the result
      set since, NO deletes or removes (production may forget them), an
      ExistenceFilter with the count now matching, CURRENT, NO_CHANGE; a
      client whose count differs must re-listen without the token.  A token
      unknown or too old: ADD, RESET, the whole result set.
    remove_target: REMOVE.  The client half-closing ends the call OK.
  Billing (Firestore's listener rules), in /_test/log entries with op
  "Listen" (plus stream, targetId and event: add | token | readTime |
  reset | change | remove | end): a new query costs max(1, documents sent);
  a change a read per document added or updated, and per document removed
  because it changed; deletes nothing; a resume only its document_changes.
  Emulator quirks not copied: it answers every change with RESET and the
  whole result set again, never resumes (RESET always), sends a
  document_delete for a missing document of a documents target, ignores
  `once' and a parent outside the database.

KNOWN DEVIATIONS
  No security-rules language (only the switches below); transactions are
  optimistic, not locked: a commit ABORTs (409) if a document its
  transaction read has changed since, where real Firestore would have made
  the other writer wait; readTime (point-in-time reads) is not supported;
  billed-read accounting follows the pricing page (>= 1 read per query/list, 1 per get,
  1 per batchGet document) but is an approximation; composite-index
  detection is a heuristic; error messages resemble, not copy, Google's;
  document fields that an updateMask does not name are ignored, not
  rejected; a geoPoint always prints both latitude and longitude (Google may
  omit a 0.0 one, as proto3 JSON does); no limit on writes per commit (only
  the 10 MiB request).

TEST-ONLY SIDE CHANNEL (real Firestore has nothing like it)
  Everything under /_test/ is never logged, faulted nor authenticated.
    GET    /_test/dump[?project=P]  {"documents":[Document...]} sorted by name
                                    (here "fields" is present even when empty)
    GET    /_test/log[?since=SEQ]   {"requests":[{seq,time,method,path,query,
                                     op,status,grpcStatus,reads,writes,
                                     deletes,fault,auth,conn}...],
                                     "totals":{requests,reads,writes,deletes}}
                                     (conn numbers TCP connections, to check
                                     keep-alive reuse; auth is null, "owner",
                                     "bearer" or "other")
    DELETE /_test/log               forget the log
    POST   /_test/faults  {"mode":"error","status":"UNAVAILABLE"|503|...,
                           "count":1, "skip":0, "match":"substring of path",
                           "method":"POST", "delayMs":0, "message":"..."}
           mode: error      answer the status without doing anything
                 drop       close the connection without answering or acting
                 lose_reply perform the request, then close without answering
                 delay      sleep delayMs, then serve normally
           count -1 = forever; rules are tried in order, first match fires.
    GET    /_test/faults, DELETE /_test/faults
    POST   /_test/config  any of {"auth":"open"|"issued"|"token:T",
                           "deny":["collectionId",...], "tokenLifetime":secs,
                           "latencyMs":ms, "compositeIndexes":bool,
                           "apiKey":"KEY"|null, "listen":"ok"|"unimplemented"|
                           "no_h2", "resumeWindow":secs}; GET /_test/config
           latencyMs    delays every REST answer, and every Listen message
                        (each sent no earlier than latencyMs after it was made)
           listen       unimplemented: Listen answers UNIMPLEMENTED; no_h2: the
                        HTTP/2 preface gets an HTTP/1.1 505, as from a server
                        without HTTP/2
           resumeWindow seconds a resume token stays good (default 1800)
           auth open    no check (emulator with open rules)
                issued  Bearer must be a live ID token from this server
                token:T Bearer must be exactly T
           with a required auth, no Authorization header is 403
           PERMISSION_DENIED (rules see request.auth == null) and a wrong or
           expired token is 401 UNAUTHENTICATED.  "deny" answers 403
           PERMISSION_DENIED for any document under a collection with that ID,
           to every caller ("Bearer owner" too: p2pcat's own client sends it to
           an emulator, and the switch exists to test how a client takes a 403).
    GET    /_test/listen            {"streams":[{conn, stream, database, silent,
                                     opened, messagesSent, targets:[{targetId,
                                     query{parent,collectionId,allDescendants} |
                                     documents, docs (how many the client
                                     holds), resume (none|token|readTime|reset),
                                     resumeToken (base64), readTime}]}]}:
                                     the open Listen streams (wait on this until
                                     a listener listens)
    POST   /_test/listen {"action": A, ...}  acts on every open Listen stream:
           goaway       GOAWAY ("error": code, default NO_ERROR; "lastStreamId",
                        default the last stream seen) on each connection carrying
                        one, then the connection closes after "graceMs" (0)
           rst          RST_STREAM ("error": code, default 2 INTERNAL_ERROR)
           status       end the call: grpc-status "code" (default 14) and
                        "message" in trailers
           silent       send nothing more on these streams (changes are dropped);
                        they stay open and the connection answers PINGs
           drop         close their TCP connections, no GOAWAY
           oversized    a message prefix claiming "bytes" (default 64 MiB), then
                        "junk" (default 65536) random bytes
           malformed    a message that is not protobuf ("hex": its bytes; default
                        a field whose length runs past the message)
           flood        "count" (default -1: without end) document_changes for
                        made-up documents, as fast as flow control allows, never
                        followed by a consistent snapshot
           wrong_target a document_change and CURRENT for "targetId" (default the
                        largest added + 1000), then a NO_CHANGE
           filter       an ExistenceFilter per target with "count" (default one
                        more than the client holds)
           -> {"streams": N, "connections": M}.  Actions are queued behind the
           messages already pending (latencyMs); /_test/faults rules matching
           the Listen path apply when a call opens (error, drop, delay).
    POST   /_test/expire_tokens     every ID token issued so far expires now;
                                    with {"refresh":true} refresh tokens too
                                    (securetoken then answers TOKEN_EXPIRED)
    POST   /_test/reset             documents, log, faults, tokens, config,
                                    resume tokens (open Listen streams stay)
  Command-line equivalents: --auth open|issued, --require-token T,
  --deny COLL (repeatable), --token-lifetime S, --latency-ms MS,
  --composite-indexes, --api-key KEY, --resume-window S, --project P,
  -v (log requests).
"""

import argparse
import base64
import binascii
import collections
import datetime
import functools
import json
import math
import os
import random
import re
import signal
import socket
import string
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fs_proto
import h2conn

MAX_REQUEST = 10 * 1024 * 1024
MAX_DOC = 1024 * 1024
MAX_STRING = 1024 * 1024 - 89
MAX_DEPTH = 20            # maps and arrays nest at most 20 deep
MAX_NAME = 6 * 1024       # bytes in a document name
MAX_SUBCOLL_DEPTH = 100
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

GRPC_NUM = {"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3,
            "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5, "ALREADY_EXISTS": 6,
            "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
            "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11,
            "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
            "DATA_LOSS": 15, "UNAUTHENTICATED": 16}
HTTP_CODE = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499, "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
STATUS_OF_CODE = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                  403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED",
                  429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
                  501: "UNIMPLEMENTED", 503: "UNAVAILABLE",
                  504: "DEADLINE_EXCEEDED"}
DEFAULT_MSG = {
    "UNAVAILABLE": "The service is currently unavailable.",
    "RESOURCE_EXHAUSTED": "Quota exceeded.",
    "ABORTED": "Too much contention on these documents. Please try again.",
    "DEADLINE_EXCEEDED": "Deadline exceeded.",
    "INTERNAL": "Internal error encountered.",
    "PERMISSION_DENIED": "Missing or insufficient permissions.",
    "UNAUTHENTICATED": "Request had invalid authentication credentials. "
    "Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/"
    "sign-in/web/devconsole-project.",
}
# Query parameters every Google API accepts ("system parameters").
SYSTEM_PARAMS = {"key", "alt", "$alt", "prettyPrint", "fields", "quotaUser",
                 "access_token", "callback", "upload_protocol", "uploadType",
                 "$.xgafv", "oauth_token"}


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = HTTP_CODE.get(status, 500)


def invalid(msg):
    return ApiError("INVALID_ARGUMENT", msg)


# ---------------------------------------------------------------- time

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})"
                   r"(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
MIN_US = -62135596800 * 1000000          # 0001-01-01T00:00:00Z
MAX_US = 253402300799 * 1000000 + 999999  # 9999-12-31T23:59:59.999999Z


def fmt_ts(us):
    """Microseconds since the epoch -> RFC 3339 as protobuf JSON prints it."""
    sec, frac = divmod(us, 1000000)
    d = EPOCH + datetime.timedelta(seconds=sec)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.year < 1000:
        s = "%04d" % d.year + s[s.index("-"):]
    if frac:
        if frac % 1000 == 0:
            s += ".%03d" % (frac // 1000)
        else:
            s += ".%06d" % frac
    return s + "Z"


def parse_ts(s):
    """RFC 3339 -> microseconds since the epoch (rounded down); None if bad."""
    if not isinstance(s, str):
        return None
    m = TS_RE.match(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    try:
        base = datetime.datetime(y, mo, d, h, mi, min(se, 59),
                                 tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    if se > 59:
        return None
    frac = (m.group(7) or "").ljust(9, "0")
    nanos = int(frac) if frac else 0
    off = m.group(8)
    offs = 0
    if off != "Z":
        sign = -1 if off[0] == "-" else 1
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        offs = sign * (oh * 3600 + om * 60)
    secs = (base - EPOCH) // datetime.timedelta(seconds=1) - offs
    us = secs * 1000000 + nanos // 1000
    if us < MIN_US or us > MAX_US:
        return None
    return us


# ---------------------------------------------------------------- names

RESERVED_RE = re.compile(r"^__.*__$", re.S)


def check_id(seg, what="Document"):
    if seg == "":
        raise invalid("%s id cannot be empty." % what)
    if "/" in seg:
        raise invalid('%s id "%s" cannot contain \'/\'.' % (what, seg))
    if seg in (".", ".."):
        raise invalid('%s id "%s" is invalid: "." and ".." are not allowed.'
                      % (what, seg))
    if len(seg.encode("utf-8", "surrogatepass")) > 1500:
        raise invalid("%s id is longer than 1500 bytes." % what)
    if RESERVED_RE.match(seg):
        raise invalid('Resource id "%s" is invalid because it is reserved.'
                      % seg)


def check_field_name(k):
    if not isinstance(k, str) or k == "":
        raise invalid("Field names cannot be empty.")
    if len(k.encode("utf-8", "surrogatepass")) > 1500:
        raise invalid("Field name is longer than 1500 bytes.")
    if RESERVED_RE.match(k) and k != "__type__":
        raise invalid('Field name "%s" is reserved: names matching __.*__ '
                      "may not be written." % k)


SIMPLE_FIELD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def parse_field_path(p, allow_name=False):
    """`a.b`, `` a.`x.y` `` -> ['a','b'] / ['a','x.y']."""
    if not isinstance(p, str) or p == "":
        raise invalid("Invalid field path: field paths cannot be empty.")
    segs, i, n = [], 0, len(p)
    while True:
        if i < n and p[i] == "`":
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise invalid('Invalid field path "%s": unterminated '
                                  "quoted field name." % p)
                c = p[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise invalid('Invalid field path "%s".' % p)
                    buf.append(p[i + 1])
                    i += 2
                    continue
                if c == "`":
                    i += 1
                    break
                buf.append(c)
                i += 1
            seg = "".join(buf)
            if seg == "":
                raise invalid('Invalid field path "%s": empty field name.' % p)
        else:
            j = i
            while j < n and p[j] != ".":
                j += 1
            seg = p[i:j]
            if not SIMPLE_FIELD.match(seg):
                raise invalid('Invalid field path "%s": unquoted field names '
                              "must match [A-Za-z_][A-Za-z_0-9]*." % p)
            i = j
        segs.append(seg)
        if i >= n:
            break
        if p[i] != ".":
            raise invalid('Invalid field path "%s".' % p)
        i += 1
        if i >= n:
            raise invalid('Invalid field path "%s": ends with a dot.' % p)
    for s in segs:
        if RESERVED_RE.match(s) and not (allow_name and segs == ["__name__"]):
            raise invalid('Invalid field path "%s": __.*__ is reserved.' % p)
    return segs


def fmt_field_path(segs):
    return ".".join(s if SIMPLE_FIELD.match(s) else
                    "`" + s.replace("\\", "\\\\").replace("`", "\\`") + "`"
                    for s in segs)


class DbPath:
    """projects/{p}/databases/{db}/documents[/seg...]"""

    def __init__(self, project, database, segs):
        self.project, self.database, self.segs = project, database, tuple(segs)

    @property
    def root(self):
        return "projects/%s/databases/%s/documents" % (self.project,
                                                       self.database)

    @property
    def name(self):
        return "/".join((self.root,) + self.segs)


def split_name(name):
    """'projects/p/databases/d/documents/a/b' -> (root, ('a','b')) or None."""
    if not isinstance(name, str):
        return None
    parts = name.split("/")
    if (len(parts) < 5 or parts[0] != "projects" or parts[2] != "databases"
            or parts[4] != "documents" or not parts[1] or not parts[3]):
        return None
    return "/".join(parts[:5]), tuple(parts[5:])


def check_path_limits(root, segs):
    if len(segs) > 2 * MAX_SUBCOLL_DEPTH + 1:
        raise invalid("Document path is more than %d subcollections deep."
                      % MAX_SUBCOLL_DEPTH)
    name = "/".join((root,) + tuple(segs))
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME:
        raise invalid("Document name \"%s...\" is longer than %d bytes."
                      % (name[:100], MAX_NAME))


def doc_name_or_error(name, root, what="Document name"):
    sp = split_name(name)
    if sp is None or len(sp[1]) == 0 or len(sp[1]) % 2:
        raise invalid('%s "%s" lacks "/" at index ... or is not a valid '
                      "document name." % (what, name))
    if sp[0] != root:
        raise invalid('%s "%s" does not belong to database "%s".'
                      % (what, name, root[:-len("/documents")]))
    for i, s in enumerate(sp[1]):
        check_id(s, "Collection" if i % 2 == 0 else "Document")
    check_path_limits(sp[0], sp[1])
    return name


# ---------------------------------------------------------------- values

VALUE_KEYS = {"nullValue", "booleanValue", "integerValue", "doubleValue",
              "timestampValue", "stringValue", "bytesValue", "referenceValue",
              "geoPointValue", "arrayValue", "mapValue"}
B64_RE = re.compile(r"^[A-Za-z0-9+/\-_]*={0,2}$")
INT_RE = re.compile(r"^-?[0-9]+$")
FLOAT_STR_RE = re.compile(r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def snake_to_camel(k):
    if "_" not in k:
        return k
    p = k.split("_")
    return p[0] + "".join(x[:1].upper() + x[1:] for x in p[1:])


def message(obj, allowed, where):
    """Check a JSON object against a message's field names (proto3 JSON
    accepts lowerCamel and the original snake_case names)."""
    if not isinstance(obj, dict):
        raise invalid("Invalid JSON payload received. Expected an object at "
                      "'%s'." % where)
    out = {}
    for k, v in obj.items():
        ck = snake_to_camel(k)
        if ck not in allowed:
            raise invalid('Invalid JSON payload received. Unknown name "%s" at '
                          "'%s': Cannot find field." % (k, where))
        if ck in out:
            raise invalid('Invalid JSON payload received. Duplicate field "%s" '
                          "at '%s'." % (k, where))
        out[ck] = v
    return out


def parse_value(v, where, in_array=False, depth=1):
    """JSON Value from a client -> canonical Value (as we store and print)."""
    v = message(v, VALUE_KEYS, where)
    keys = [k for k in v]
    if len(keys) == 0:
        raise invalid("Invalid value at '%s': a Value must have exactly one "
                      "value type set; it has none." % where)
    if len(keys) > 1:
        raise invalid("Invalid JSON payload received. Oneof field 'value_type' "
                      "is already set. Cannot set '%s' at '%s'."
                      % (keys[1], where))
    k = keys[0]
    x = v[k]
    bad = invalid("Invalid value at '%s.%s': %s" % (where, k, json.dumps(x)[:100]))
    if k == "nullValue":
        if x is None or x == "NULL_VALUE" or x == 0:
            return {"nullValue": None}
        raise bad
    if k == "booleanValue":
        if isinstance(x, bool):
            return {"booleanValue": x}
        raise bad
    if k == "integerValue":
        if isinstance(x, bool):
            raise bad
        if isinstance(x, int):
            n = x
        elif isinstance(x, float) and x.is_integer():
            n = int(x)
        elif isinstance(x, str) and INT_RE.match(x):
            n = int(x)
        else:
            raise invalid("Invalid value at '%s.integer_value' (TYPE_INT64), %s"
                          % (where, json.dumps(x)[:100]))
        if n < INT64_MIN or n > INT64_MAX:
            raise invalid("Invalid value at '%s.integer_value' (TYPE_INT64), %s"
                          % (where, json.dumps(x)[:100]))
        return {"integerValue": str(n)}
    if k == "doubleValue":
        if isinstance(x, bool):
            raise bad
        if isinstance(x, (int, float)):
            try:
                return {"doubleValue": float(x)}
            except OverflowError:
                raise bad
        if isinstance(x, str):
            if x in ("NaN", "Infinity", "-Infinity"):
                return {"doubleValue": float(x.replace("Infinity", "inf"))}
            if FLOAT_STR_RE.match(x):
                f = float(x)
                if not math.isinf(f):
                    return {"doubleValue": f}
        raise invalid("Invalid value at '%s.double_value' (TYPE_DOUBLE), %s"
                      % (where, json.dumps(x)[:100]))
    if k == "timestampValue":
        us = parse_ts(x)
        if us is None:
            raise invalid("Invalid value at '%s.timestamp_value' "
                          "(type.googleapis.com/google.protobuf.Timestamp), "
                          "Field 'timestamp_value', Invalid time format: %s"
                          % (where, json.dumps(x)[:100]))
        return {"timestampValue": fmt_ts(us)}
    if k == "stringValue":
        if not isinstance(x, str):
            raise bad
        if len(x.encode("utf-8", "surrogatepass")) > MAX_STRING:
            raise invalid("Value for '%s' is longer than 1048487 bytes." % where)
        return {"stringValue": x}
    if k == "bytesValue":
        if not isinstance(x, str) or not B64_RE.match(x):
            raise invalid("Invalid value at '%s.bytes_value' (TYPE_BYTES), "
                          "Base64 decoding failed for %s" % (where, json.dumps(x)[:100]))
        s = x.replace("-", "+").replace("_", "/").rstrip("=")
        if len(s) % 4 == 1:
            raise invalid("Invalid value at '%s.bytes_value' (TYPE_BYTES), "
                          "Base64 decoding failed for %s" % (where, json.dumps(x)[:100]))
        try:
            raw = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise invalid("Invalid value at '%s.bytes_value' (TYPE_BYTES), "
                          "Base64 decoding failed for %s" % (where, json.dumps(x)[:100]))
        if len(raw) > MAX_STRING:
            raise invalid("Value for '%s' is longer than 1048487 bytes." % where)
        return {"bytesValue": base64.b64encode(raw).decode()}
    if k == "referenceValue":
        sp = split_name(x) if isinstance(x, str) else None
        if sp is None or len(sp[1]) == 0 or len(sp[1]) % 2:
            raise invalid("Invalid value at '%s.reference_value': %s is not a "
                          "valid document name." % (where, json.dumps(x)[:200]))
        for i, s in enumerate(sp[1]):
            check_id(s, "Collection" if i % 2 == 0 else "Document")
        return {"referenceValue": x}
    if k == "geoPointValue":
        g = message(x, {"latitude", "longitude"}, where + ".geo_point_value")
        out = {}
        for f, lim in (("latitude", 90), ("longitude", 180)):
            n = g.get(f, 0)
            if isinstance(n, bool) or not isinstance(n, (int, float)):
                raise bad
            if not (-lim <= n <= lim):
                raise invalid("Invalid value at '%s.geo_point_value': %s must "
                              "be in the range [-%d, %d]." % (where, f, lim, lim))
            out[f] = float(n)
        return {"geoPointValue": out}
    if k == "arrayValue":
        if in_array:
            raise invalid("Cannot have an array value directly inside another "
                          "array value (at '%s')." % where)
        a = message(x, {"values"}, where + ".array_value")
        vals = a.get("values", [])
        if vals is None:
            vals = []
        if not isinstance(vals, list):
            raise bad
        if depth >= MAX_DEPTH:
            raise invalid("Value at '%s' nests maps and arrays more than %d "
                          "deep." % (where, MAX_DEPTH))
        out = [parse_value(e, "%s.array_value.values[%d]" % (where, i), True, depth + 1)
               for i, e in enumerate(vals)]
        return {"arrayValue": {"values": out}} if out else {"arrayValue": {}}
    if k == "mapValue":
        m = message(x, {"fields"}, where + ".map_value")
        if depth >= MAX_DEPTH and m.get("fields"):
            raise invalid("Value at '%s' nests maps and arrays more than %d "
                          "deep." % (where, MAX_DEPTH))
        f = parse_fields(m.get("fields", {}), where + ".map_value", depth + 1)
        return {"mapValue": {"fields": f}} if f else {"mapValue": {}}
    raise bad


def parse_fields(fields, where, depth=1):
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise invalid("Invalid JSON payload received. Expected an object at "
                      "'%s.fields'." % where)
    out = {}
    for i, (k, v) in enumerate(fields.items()):
        check_field_name(k)
        out[k] = parse_value(v, "%s.fields[%d].value" % (where, i), False, depth)
    return out


TYPE_ORDER = {"nullValue": 0, "booleanValue": 1, "integerValue": 2,
              "doubleValue": 2, "timestampValue": 3, "stringValue": 4,
              "bytesValue": 5, "referenceValue": 6, "geoPointValue": 7,
              "arrayValue": 8, "mapValue": 9}


def vkind(v):
    return next(iter(v))


def num(v):
    k = vkind(v)
    return int(v[k]) if k == "integerValue" else v[k]


def cmp(a, b):
    return (a > b) - (a < b)


def ref_key(name):
    return tuple(s.encode("utf-8", "surrogatepass") for s in name.split("/"))


def vcmp(a, b):
    """Firestore's total order on values."""
    ka, kb = vkind(a), vkind(b)
    ta, tb = TYPE_ORDER[ka], TYPE_ORDER[kb]
    if ta != tb:
        return cmp(ta, tb)
    if ta == 0:
        return 0
    if ta == 1:
        return cmp(a[ka], b[kb])
    if ta == 2:
        x, y = num(a), num(b)
        xn = isinstance(x, float) and math.isnan(x)
        yn = isinstance(y, float) and math.isnan(y)
        if xn or yn:
            return 0 if xn and yn else (-1 if xn else 1)
        return cmp(x, y)
    if ta == 3:
        return cmp(parse_ts(a[ka]), parse_ts(b[kb]))
    if ta == 4:
        return cmp(a[ka].encode("utf-8", "surrogatepass"),
                   b[kb].encode("utf-8", "surrogatepass"))
    if ta == 5:
        return cmp(base64.b64decode(a[ka]), base64.b64decode(b[kb]))
    if ta == 6:
        return cmp(ref_key(a[ka]), ref_key(b[kb]))
    if ta == 7:
        ga, gb = a[ka], b[kb]
        return cmp((ga.get("latitude", 0.0), ga.get("longitude", 0.0)),
                   (gb.get("latitude", 0.0), gb.get("longitude", 0.0)))
    if ta == 8:
        xa, xb = a[ka].get("values", []), b[kb].get("values", [])
        for p, q in zip(xa, xb):
            c = vcmp(p, q)
            if c:
                return c
        return cmp(len(xa), len(xb))
    fa, fb = a[ka].get("fields", {}), b[kb].get("fields", {})
    ia = sorted(fa.items(), key=lambda kv: kv[0].encode("utf-8", "surrogatepass"))
    ib = sorted(fb.items(), key=lambda kv: kv[0].encode("utf-8", "surrogatepass"))
    for (k1, v1), (k2, v2) in zip(ia, ib):
        c = cmp(k1.encode("utf-8", "surrogatepass"),
                k2.encode("utf-8", "surrogatepass"))
        if c:
            return c
        c = vcmp(v1, v2)
        if c:
            return c
    return cmp(len(ia), len(ib))


def veq(a, b):
    """Equality as queries see it (1 == 1.0; NaN equals nothing)."""
    if TYPE_ORDER[vkind(a)] != TYPE_ORDER[vkind(b)]:
        return False
    if is_nan(a) or is_nan(b):
        return False
    return vcmp(a, b) == 0


def is_nan(v):
    return vkind(v) == "doubleValue" and math.isnan(v["doubleValue"])


def is_null(v):
    return vkind(v) == "nullValue"


def same_values(a, b):
    return json.dumps(render(a), sort_keys=True) == json.dumps(render(b), sort_keys=True)


# ---- sizes (https://firebase.google.com/docs/firestore/storage-size)

def str_size(s):
    return len(s.encode("utf-8", "surrogatepass")) + 1


def name_size(segs):
    return sum(str_size(s) for s in segs) + 16


def value_size(v):
    k = vkind(v)
    x = v[k]
    if k in ("nullValue", "booleanValue"):
        return 1
    if k in ("integerValue", "doubleValue", "timestampValue"):
        return 8
    if k == "stringValue":
        return str_size(x)
    if k == "bytesValue":
        return len(base64.b64decode(x))
    if k == "referenceValue":
        return name_size(split_name(x)[1])
    if k == "geoPointValue":
        return 16
    if k == "arrayValue":
        return sum(value_size(e) for e in x.get("values", []))
    return fields_size(x.get("fields", {}))


def fields_size(fields):
    return sum(str_size(k) + value_size(v) for k, v in fields.items())


def doc_size(segs, fields):
    return name_size(segs) + fields_size(fields) + 32


# ---- field path access on canonical fields

def get_path(fields, segs):
    cur = fields
    for i, s in enumerate(segs):
        if s not in cur:
            return None
        v = cur[s]
        if i == len(segs) - 1:
            return v
        if vkind(v) != "mapValue":
            return None
        cur = v["mapValue"].get("fields", {})
    return None


def set_path(fields, segs, val):
    cur = fields
    for s in segs[:-1]:
        v = cur.get(s)
        if v is None or vkind(v) != "mapValue":
            v = {"mapValue": {"fields": {}}}
            cur[s] = v
        v["mapValue"].setdefault("fields", {})
        cur = v["mapValue"]["fields"]
    cur[segs[-1]] = val


def del_path(fields, segs):
    cur = fields
    for s in segs[:-1]:
        v = cur.get(s)
        if v is None or vkind(v) != "mapValue":
            return
        cur = v["mapValue"].get("fields", {})
    cur.pop(segs[-1], None)


def tidy(fields):
    """Drop empty 'fields' keys left by set/del so maps print as {}."""
    for v in fields.values():
        if vkind(v) == "mapValue":
            f = v["mapValue"].get("fields")
            if f:
                tidy(f)
            else:
                v["mapValue"] = {}
    return fields


def deepcopy_fields(f):
    return json.loads(json.dumps(f))


def project_fields(fields, paths):
    out = {}
    for p in paths:
        v = get_path(fields, p)
        if v is not None:
            set_path(out, p, json.loads(json.dumps(v)))
    return tidy(out)


def render(obj):
    """Python objects -> what Google's JSON shows (doubles 1 not 1.0,
    NaN/Infinity as strings)."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        if obj.is_integer() and abs(obj) < 1e17 and not (obj == 0 and math.copysign(1, obj) < 0):
            return int(obj)
        return obj
    if isinstance(obj, dict):
        return {k: render(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [render(v) for v in obj]
    return obj


# ---------------------------------------------------------------- store

class Doc:
    __slots__ = ("fields", "create", "update")

    def __init__(self, fields, create, update):
        self.fields, self.create, self.update = fields, create, update


HISTORY_MAX = 200000        # changes kept for resuming Listen streams
HISTORY_AGE = 3600 * 1000000


class Store:
    """Documents, plus what Listen needs: a history of changes (to rebuild
    the result set a resume token stands for) and the open Listen streams,
    told of every commit while the lock is still held, so each stream sees
    commits in order."""

    def __init__(self):
        self.lock = threading.RLock()
        self.docs = {}      # full name -> Doc
        self.last_us = 0
        self.txns = {}      # id -> {name: updateTime us or None} read so far
        self.history = []   # (commit us, name, Doc before or None), oldest first
        self.history_floor = 0      # resume tokens older than this are lost
        self.epoch = os.urandom(8)  # in resume tokens: which store issued them
        self.listeners = set()

    def tick(self):
        """A commit time, strictly later than every earlier one."""
        now = time.time_ns() // 1000
        self.last_us = max(now, self.last_us + 1)
        return self.last_us

    def read_time(self):
        return max(time.time_ns() // 1000, self.last_us)

    def put(self, name, doc, now):
        """Store or (doc None) delete a document at commit time now."""
        self.history.append((now, name, self.docs.get(name)))
        if doc is None:
            self.docs.pop(name, None)
        else:
            self.docs[name] = doc
        if len(self.history) > HISTORY_MAX or self.history[0][0] < now - HISTORY_AGE:
            cut = max(len(self.history) - HISTORY_MAX, 0)
            while cut < len(self.history) and self.history[cut][0] < now - HISTORY_AGE:
                cut += 1
            self.history_floor = self.history[cut - 1][0] if cut else self.history_floor
            del self.history[:cut]

    def docs_at(self, us):
        """The documents as they were at time us (history permitting)."""
        docs = dict(self.docs)
        for t, name, old in reversed(self.history):
            if t <= us:
                break
            if old is None:
                docs.pop(name, None)
            else:
                docs[name] = old
        return docs

    def publish(self, now):
        """Tell every Listen stream of the commit at `now'.  Lock held."""
        for ls in list(self.listeners):
            ls.store_changed(now)

    def forget(self):
        """Everything gone, resume tokens included (/_test/reset)."""
        now = self.tick()
        for name in list(self.docs):
            self.put(name, None, now)
        self.history = []
        self.history_floor = now
        self.epoch = os.urandom(8)
        self.txns.clear()
        self.publish(now)


def doc_json(name, d, mask=None):
    out = {"name": name}
    fields = d.fields if mask is None else project_fields(d.fields, mask)
    if fields:
        out["fields"] = fields
    out["createTime"] = fmt_ts(d.create)
    out["updateTime"] = fmt_ts(d.update)
    return out


AUTO_ID_CHARS = string.ascii_letters + string.digits
_rng = random.SystemRandom()


def auto_id():
    return "".join(_rng.choice(AUTO_ID_CHARS) for _ in range(20))


# ---------------------------------------------------------------- queries

EQ_OPS = {"EQUAL", "ARRAY_CONTAINS", "IN", "ARRAY_CONTAINS_ANY"}
RANGE_OPS = {"LESS_THAN", "LESS_THAN_OR_EQUAL", "GREATER_THAN",
             "GREATER_THAN_OR_EQUAL"}
NEQ_OPS = {"NOT_EQUAL", "NOT_IN"}
UNARY_OPS = {"IS_NAN", "IS_NULL", "IS_NOT_NAN", "IS_NOT_NULL"}


class Query:
    pass


def parse_filter(f, where):
    f = message(f, {"compositeFilter", "fieldFilter", "unaryFilter"}, where)
    if len(f) != 1:
        raise invalid("A filter must have exactly one of compositeFilter, "
                      "fieldFilter, unaryFilter (at '%s')." % where)
    k, x = next(iter(f.items()))
    if k == "compositeFilter":
        c = message(x, {"op", "filters"}, where + ".composite_filter")
        op = c.get("op")
        if op not in ("AND", "OR"):
            raise invalid("Invalid value at '%s.composite_filter.op': %s"
                          % (where, json.dumps(op)))
        subs = c.get("filters") or []
        if not isinstance(subs, list) or not subs:
            raise invalid("A composite filter must contain at least one filter.")
        return ("comp", op, [parse_filter(s, "%s.composite_filter.filters[%d]"
                                          % (where, i)) for i, s in enumerate(subs)])
    if k == "fieldFilter":
        c = message(x, {"field", "op", "value"}, where + ".field_filter")
        path = parse_field_path(message(c.get("field") or {}, {"fieldPath"},
                                        where + ".field_filter.field")
                                .get("fieldPath"), True)
        op = c.get("op")
        if op not in EQ_OPS | RANGE_OPS | NEQ_OPS:
            raise invalid("Invalid value at '%s.field_filter.op': %s"
                          % (where, json.dumps(op)))
        if "value" not in c:
            raise invalid("A field filter must have a value.")
        val = parse_value(c["value"], where + ".field_filter.value")
        if op in ("IN", "NOT_IN", "ARRAY_CONTAINS_ANY"):
            if vkind(val) != "arrayValue" or not val["arrayValue"].get("values"):
                raise invalid("A '%s' filter requires a non-empty ArrayValue."
                              % op)
            lim = 10 if op == "NOT_IN" else 30
            if len(val["arrayValue"]["values"]) > lim:
                raise invalid("'%s' supports up to %d comparison values."
                              % (op, lim))
        if op in ("EQUAL", "NOT_EQUAL") and (is_null(val) or is_nan(val)):
            raise invalid("Use a unary filter (IS_NULL/IS_NAN) to compare "
                          "with null or NaN.")
        if path == ["__name__"]:
            if op in ("ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY"):
                raise invalid("__name__ cannot be used with %s." % op)
            vals = val["arrayValue"].get("values", []) if op in ("IN", "NOT_IN") else [val]
            for e in vals:
                if vkind(e) != "referenceValue":
                    raise invalid("__key__ filter value must be a Key")
        return ("field", path, op, val)
    c = message(x, {"op", "field"}, where + ".unary_filter")
    op = c.get("op")
    if op not in UNARY_OPS:
        raise invalid("Invalid value at '%s.unary_filter.op': %s"
                      % (where, json.dumps(op)))
    path = parse_field_path(message(c.get("field") or {}, {"fieldPath"},
                                    where + ".unary_filter.field").get("fieldPath"))
    return ("unary", path, op)


def flat_filters(f, out):
    if f is None:
        return out
    if f[0] == "comp":
        for s in f[2]:
            flat_filters(s, out)
    else:
        out.append(f)
    return out


def doc_field(name, d, path):
    if path == ["__name__"]:
        return {"referenceValue": name}
    return get_path(d.fields, path)


def matches(f, name, d):
    if f is None:
        return True
    kind = f[0]
    if kind == "comp":
        if f[1] == "AND":
            return all(matches(s, name, d) for s in f[2])
        return any(matches(s, name, d) for s in f[2])
    if kind == "unary":
        v = doc_field(name, d, f[1])
        if v is None:
            return False
        op = f[2]
        if op == "IS_NULL":
            return is_null(v)
        if op == "IS_NAN":
            return is_nan(v)
        if op == "IS_NOT_NULL":
            return not is_null(v)
        return not is_null(v) and not is_nan(v)
    _, path, op, val = f
    v = doc_field(name, d, path)
    if v is None:
        return False
    if op == "EQUAL":
        return veq(v, val)
    if op == "NOT_EQUAL":
        return not is_null(v) and not veq(v, val)
    if op == "IN":
        return any(veq(v, e) for e in val["arrayValue"]["values"])
    if op == "NOT_IN":
        return not is_null(v) and not any(veq(v, e) for e in val["arrayValue"]["values"])
    if op == "ARRAY_CONTAINS":
        return vkind(v) == "arrayValue" and any(
            veq(e, val) for e in v["arrayValue"].get("values", []))
    if op == "ARRAY_CONTAINS_ANY":
        return vkind(v) == "arrayValue" and any(
            veq(e, w) for e in v["arrayValue"].get("values", [])
            for w in val["arrayValue"]["values"])
    if TYPE_ORDER[vkind(v)] != TYPE_ORDER[vkind(val)] or is_nan(v) or is_nan(val):
        return False
    c = vcmp(v, val)
    return {"LESS_THAN": c < 0, "LESS_THAN_OR_EQUAL": c <= 0,
            "GREATER_THAN": c > 0, "GREATER_THAN_OR_EQUAL": c >= 0}[op]


def parse_structured_query(sq, where="structured_query"):
    sq = message(sq, {"select", "from", "where", "orderBy", "startAt", "endAt",
                      "offset", "limit", "findNearest"}, where)
    if "findNearest" in sq:
        raise ApiError("UNIMPLEMENTED", "findNearest is not supported by this "
                       "test server.")
    q = Query()
    frm = sq.get("from") or []
    if not isinstance(frm, list) or len(frm) != 1:
        raise invalid("A query must select exactly one collection (from).")
    sel = message(frm[0], {"collectionId", "allDescendants"}, where + ".from[0]")
    q.collection = sel.get("collectionId", "")
    q.all_desc = bool(sel.get("allDescendants", False))
    if not isinstance(q.collection, str):
        raise invalid("Invalid collectionId.")
    if q.collection:
        check_id(q.collection, "Collection")
    elif not q.all_desc:
        raise invalid("A query must name a collection (from.collectionId).")
    q.where = parse_filter(sq["where"], where + ".where") if sq.get("where") else None
    q.order = []
    for i, o in enumerate(sq.get("orderBy") or []):
        o = message(o, {"field", "direction"}, "%s.order_by[%d]" % (where, i))
        path = parse_field_path(message(o.get("field") or {}, {"fieldPath"},
                                        "%s.order_by[%d].field" % (where, i))
                                .get("fieldPath"), True)
        d = o.get("direction", "ASCENDING")
        if d not in ("ASCENDING", "DESCENDING", "DIRECTION_UNSPECIFIED"):
            raise invalid("Invalid value at '%s.order_by[%d].direction': %s"
                          % (where, i, json.dumps(d)))
        if any(p == path for p, _ in q.order):
            raise invalid("order by clause cannot contain duplicate fields: %s"
                          % fmt_field_path(path))
        q.order.append((path, d != "DESCENDING"))
    q.explicit_order = list(q.order)
    # Implicit order (query.proto): inequality fields, then __name__.
    ineq = []
    for f in flat_filters(q.where, []):
        if (f[0] == "field" and f[2] in RANGE_OPS | NEQ_OPS) or \
                (f[0] == "unary" and f[2] in ("IS_NOT_NAN", "IS_NOT_NULL")):
            if f[1] not in ineq:
                ineq.append(f[1])
    last_asc = q.order[-1][1] if q.order else True
    for p in sorted((p for p in ineq if p != ["__name__"]),
                    key=lambda p: [s.encode("utf-8", "surrogatepass") for s in p]):
        if not any(p == op for op, _ in q.order):
            q.order.append((p, last_asc))
    if not any(p == ["__name__"] for p, _ in q.order):
        q.order.append((["__name__"], last_asc))
    q.ineq = ineq
    q.start = parse_cursor(sq.get("startAt"), where + ".start_at")
    q.end = parse_cursor(sq.get("endAt"), where + ".end_at")
    for c in (q.start, q.end):
        if c and len(c[0]) > len(q.order):
            raise invalid("Too many cursor values specified. The specified "
                          "order by has %d fields." % len(q.order))
    off = sq.get("offset", 0)
    if isinstance(off, bool) or not isinstance(off, int) or off < 0:
        raise invalid("offset must be a non-negative integer.")
    q.offset = off
    lim = sq.get("limit")
    if isinstance(lim, dict):
        lim = message(lim, {"value"}, where + ".limit").get("value", 0)
    if lim is not None and (isinstance(lim, bool) or not isinstance(lim, int)
                            or lim < 0 or lim > 2147483647):
        raise invalid("limit must be a non-negative 32-bit integer.")
    q.limit = lim
    q.select = None
    if sq.get("select") is not None:
        s = message(sq["select"], {"fields"}, where + ".select")
        q.select = [parse_field_path(message(f, {"fieldPath"}, where + ".select.fields")
                                     .get("fieldPath"), True)
                    for f in (s.get("fields") or [])]
    return q


def parse_cursor(c, where):
    if c is None:
        return None
    c = message(c, {"values", "before"}, where)
    vals = [parse_value(v, "%s.values[%d]" % (where, i))
            for i, v in enumerate(c.get("values") or [])]
    return (vals, bool(c.get("before", False)))


def needs_index(q):
    """Would a project with only automatic single-field indexes reject this?"""
    filters = flat_filters(q.where, [])
    if q.all_desc and (filters or any(p != ["__name__"] for p, _ in q.explicit_order)):
        return True  # collection-group single-field indexes are not automatic
    eq = set()
    for f in filters:
        if f[1] == ["__name__"]:
            continue
        if (f[0] == "field" and f[2] in EQ_OPS) or (f[0] == "unary" and f[2] in ("IS_NULL", "IS_NAN")):
            eq.add(tuple(f[1]))
    others = set(tuple(p) for p in q.ineq if p != ["__name__"])
    others |= set(tuple(p) for p, _ in q.explicit_order if p != ["__name__"]) - eq
    if eq and others:
        return True
    return len(others) > 1


def order_key_cmp(q, a, b):
    (na, da), (nb, db) = a, b
    for path, asc in q.order:
        c = vcmp(doc_field(na, da, path), doc_field(nb, db, path))
        if c:
            return c if asc else -c
    return 0


def cursor_cmp(q, name, d, cur):
    """Compare a document with a cursor position (over the cursor's values)."""
    for (path, asc), cv in zip(q.order, cur[0]):
        dv = doc_field(name, d, path)
        if path == ["__name__"] and vkind(cv) == "stringValue":
            cv = {"referenceValue": cv["stringValue"]}
        c = vcmp(dv, cv)
        if c:
            return c if asc else -c
    return 0


def select_rows(docs, path, q, deny):
    """-> (rows [(name, Doc)] in query order, how many the offset skipped):
    query q under parent path, over docs (a name -> Doc map)."""
    rows = []
    n = len(path.segs)
    for name, d in docs.items():
        sp = split_name(name)
        if sp[0] != path.root:
            continue
        s = sp[1]
        if len(s) < n + 2 or s[:n] != path.segs:
            continue
        if q.all_desc:
            if q.collection and s[-2] != q.collection:
                continue
            if q.collection and any(s[i] in deny for i in range(n, len(s), 2)):
                raise ApiError("PERMISSION_DENIED", DEFAULT_MSG["PERMISSION_DENIED"])
        else:
            if len(s) != n + 2 or s[n] != q.collection:
                continue
        if not all(doc_field(name, d, p) is not None for p, _ in q.order):
            continue
        if not matches(q.where, name, d):
            continue
        rows.append((name, d))
    rows.sort(key=functools.cmp_to_key(lambda a, b: order_key_cmp(q, a, b)))
    if q.start:   # startAt (before) is inclusive, startAfter is not
        before = q.start[1]
        rows = [r for r in rows if (lambda c: c > 0 or (c == 0 and before))(
            cursor_cmp(q, r[0], r[1], q.start))]
    if q.end:     # endBefore (before) is exclusive, endAt is not
        before = q.end[1]
        rows = [r for r in rows if (lambda c: c < 0 or (c == 0 and not before))(
            cursor_cmp(q, r[0], r[1], q.end))]
    skipped = min(q.offset, len(rows))
    rows = rows[q.offset:]
    if q.limit is not None:
        rows = rows[:q.limit]
    return rows, skipped


# ---------------------------------------------------------------- the server

class State:
    def __init__(self, args):
        self.args = args
        self.store = Store()
        self.log_lock = threading.Lock()
        self.log = []
        self.seq = 0
        self.conns = 0          # TCP connections accepted so far
        self.faults = []
        self.fault_lock = threading.Lock()
        self.tokens = {}        # idToken -> {"uid", "exp"}
        self.refresh = {}       # refreshToken -> uid
        self.users = {}         # uid -> account info (accounts:lookup)
        self.listens = set()    # open Listen streams (under log_lock)
        self.reset_config()

    def reset_config(self):
        a = self.args
        if a.require_token:
            auth = "token:" + a.require_token
        else:
            auth = a.auth
        self.config = {"auth": auth, "deny": list(a.deny or []),
                       "tokenLifetime": a.token_lifetime,
                       "latencyMs": a.latency_ms,
                       "compositeIndexes": a.composite_indexes,
                       "apiKey": a.api_key, "listen": "ok",
                       "resumeWindow": a.resume_window}


def record(st, entry):
    """Append a request (or a Listen event) to /_test/log."""
    with st.log_lock:
        st.seq += 1
        entry["seq"] = st.seq
        entry["time"] = fmt_ts(time.time_ns() // 1000)
        st.log.append(entry)
        if len(st.log) > 100000:
            del st.log[:10000]
    if st.args.verbose:
        sys.stderr.write("fsserver: %s %s -> %s %s r%d w%d d%d%s\n" % (
            entry["method"], entry["path"], entry["status"],
            entry["grpcStatus"], entry["reads"], entry["writes"],
            entry["deletes"], " fault=" + entry["fault"] if entry["fault"] else ""))


def take_fault(st, path, method):
    """The first /_test/faults rule matching this request, consumed."""
    with st.fault_lock:
        for f in st.faults:
            if f["count"] == 0:
                continue
            if f.get("method") and f["method"].upper() != method:
                continue
            if f.get("match") and f["match"] not in path:
                continue
            if f.get("skip", 0) > 0:
                f["skip"] -= 1
                continue
            if f["count"] > 0:
                f["count"] -= 1
            f["fired"] = f.get("fired", 0) + 1
            return dict(f)
    return None


def check_auth(st, h):
    """The caller an Authorization header stands for under the auth switch:
    None (open), "owner", "token" or a uid; ApiError if refused."""
    mode = st.config.get("auth") or "open"
    tok = None
    if h and h.startswith("Bearer "):
        tok = h[7:].strip()
    if tok == "owner":
        return "owner"
    if mode == "open":
        return None
    if h is None:
        raise ApiError("PERMISSION_DENIED", DEFAULT_MSG["PERMISSION_DENIED"])
    if mode.startswith("token:"):
        if tok != mode[6:]:
            raise ApiError("UNAUTHENTICATED", DEFAULT_MSG["UNAUTHENTICATED"])
        return "token"
    t = st.tokens.get(tok) if tok else None
    if t is None or t["exp"] <= time.time():
        raise ApiError("UNAUTHENTICATED", DEFAULT_MSG["UNAUTHENTICATED"])
    return t["uid"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fsserver/1"
    sys_version = ""

    def setup(self):
        super().setup()
        st = self.server.state
        with st.log_lock:
            st.conns += 1
            self.conn_id = st.conns

    def handle(self):
        # HTTP/2 with prior knowledge shares the port: told apart by its preface.
        st = self.server.state
        pri = h2conn.is_preface(self.connection)
        if pri and st.config.get("listen") != "no_h2":
            log = (lambda m: sys.stderr.write("fsserver: %s\n" % m)) if st.args.verbose else None
            h2conn.Connection(self.connection, grpc_app(self.server, self.conn_id), log).run()
            self.close_connection = True
            return
        try:
            first = self.connection.recv(4, socket.MSG_PEEK)
        except OSError:
            first = b""
        if pri or first == b"PRI ":
            # What an HTTP/1.1-only server says to "PRI * HTTP/2.0" (no_h2,
            # or a broken preface).
            self.wfile.write(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"
                             b"Connection: close\r\nContent-Length: 0\r\n\r\n")
            self.close_connection = True
            return
        super().handle()

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("fsserver: %s\n" % (fmt % args))

    # -- plumbing

    def do_GET(self):
        self.dispatch()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_OPTIONS = do_GET

    def read_body(self):
        """Whole body as bytes; None if it is too large (drained or not)."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks, total, too_big = [], 0, False
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    self.close_connection = True
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(size)
                self.rfile.readline(3)
                total += size
                if total > MAX_REQUEST:
                    too_big = True
                    chunks = []
                else:
                    chunks.append(data)
            return None if too_big else b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_REQUEST:
            if n <= 8 * MAX_REQUEST:
                left = n
                while left > 0:
                    got = self.rfile.read(min(left, 1 << 20))
                    if not got:
                        break
                    left -= len(got)
            else:
                self.close_connection = True
            return None
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, code, obj, extra_headers=()):
        body = json.dumps(render(obj), ensure_ascii=False, indent=2).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra_headers:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def dispatch(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        self.rawpath = url.path
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        body = self.read_body()
        if self.rawpath.startswith("/_test/") or self.rawpath == "/_test":
            try:
                code, obj = self.control(body)
            except ApiError as e:
                code, obj = e.code, err_body(e)
            self.send_json(code, obj)
            return
        if self.rawpath == "/" and self.command in ("GET", "HEAD"):
            self.send_text(200, "Ok\n")
            return
        entry = {"method": self.command, "path": urllib.parse.unquote(self.rawpath),
                 "query": url.query, "op": "", "status": 200, "grpcStatus": "OK",
                 "reads": 0, "writes": 0, "deletes": 0, "fault": None,
                 "conn": self.conn_id,
                 "auth": auth_kind(self.headers.get("Authorization"))}
        self.entry = entry
        fault = self.take_fault(entry["path"])
        lat = st.config.get("latencyMs") or 0
        if lat:
            time.sleep(lat / 1000.0)
        if fault and fault["mode"] == "delay":
            time.sleep((fault.get("delayMs") or 0) / 1000.0)
            entry["fault"] = "delay"
            fault = None
        if fault and fault["mode"] == "drop":
            entry["fault"] = "drop"
            entry["status"] = 0
            self.record(entry)
            self.drop()
            return
        if fault and fault["mode"] == "error":
            status = fault["status"]
            e = ApiError(status, fault.get("message") or DEFAULT_MSG.get(
                status, "Injected %s." % status))
            entry["fault"] = "error"
            entry["status"], entry["grpcStatus"] = e.code, status
            self.record(entry)
            self.send_json(e.code, err_body(e))
            return
        streaming = False
        try:
            if body is None:
                raise invalid("Request payload size exceeds the limit: %d bytes."
                              % MAX_REQUEST)
            code, obj, streaming = self.route(body)
        except ApiError as e:
            code, obj = e.code, err_body(e)
            if (streaming or getattr(self, "streaming", False)) and not frontend_error(e):
                obj = [obj]
            entry["grpcStatus"] = e.status
        except Exception as e:  # a bug here must not look like a hang
            import traceback
            traceback.print_exc()
            e = ApiError("INTERNAL", "fsserver internal error: %r" % (e,))
            code, obj = e.code, err_body(e)
            entry["grpcStatus"] = e.status
        entry["status"] = code
        if fault and fault["mode"] == "lose_reply":
            entry["fault"] = "lose_reply"
            self.record(entry)
            self.drop()
            return
        self.record(entry)
        self.send_json(code, obj)

    def record(self, entry):
        record(self.server.state, entry)

    def take_fault(self, path):
        return take_fault(self.server.state, path, self.command)

    # -- routing

    def route(self, body):
        p = self.rawpath
        if p.startswith("/v1/projects/") or p.startswith("/v1beta1/projects/"):
            return self.firestore(body)
        if p.startswith("/emulator/v1/projects/"):
            return self.emulator(body)
        if p.startswith("/identitytoolkit.googleapis.com/"):
            return self.identitytoolkit(body)
        if p.startswith("/securetoken.googleapis.com/"):
            return self.securetoken(body)
        raise ApiError("NOT_FOUND", "The requested URL %s was not found on this "
                       "server." % p)

    def params(self, allowed):
        out = {}
        for k, v in self.query.items():
            if k in SYSTEM_PARAMS:
                continue
            if k not in allowed:
                raise invalid('Invalid JSON payload received. Unknown name "%s": '
                              "Cannot bind query parameter. Field '%s' could not "
                              "be found in request message." % (k, k.split(".")[0]))
            out[k] = v
        return out

    def json_body(self, body, allowed, where="request"):
        if not body or not body.strip():
            return message({}, allowed, where)
        try:
            obj = strict_json(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise invalid("Invalid JSON payload received. %s" % e)
        if not isinstance(obj, dict):
            raise invalid("Invalid JSON payload received. Expected an object, "
                          "got %s." % type(obj).__name__)
        return message(obj, allowed, where)

    # -- auth and rules

    def check_auth(self):
        return check_auth(self.server.state, self.headers.get("Authorization"))

    def check_rules(self, who, segs_list, reads=0):
        """Deny switch: any collection ID in the path is denied - for every
        caller, "Bearer owner" included (it stands for rules refusing a
        client, whatever token that client sends)."""
        deny = self.server.state.config.get("deny") or []
        if not deny:
            return
        for segs in segs_list:
            for i in range(0, len(segs), 2):
                if segs[i] in deny:
                    self.entry["reads"] += reads
                    raise ApiError("PERMISSION_DENIED",
                                   DEFAULT_MSG["PERMISSION_DENIED"])

    # -- Firestore

    def firestore(self, body):
        raw = self.rawpath.split("/")
        # ['', 'v1', 'projects', P, 'databases', D, 'documents...', ...]
        if len(raw) < 7 or raw[4] != "databases":
            raise ApiError("NOT_FOUND", "The requested URL %s was not found."
                           % self.rawpath)
        project = urllib.parse.unquote(raw[3])
        database = urllib.parse.unquote(raw[5])
        rest = raw[6:]
        verb = None
        last = rest[-1]
        if ":" in last:
            base, v = last.rsplit(":", 1)
            if v in ("runQuery", "commit", "batchGet", "beginTransaction",
                     "rollback", "listCollectionIds", "runAggregationQuery",
                     "write", "listen", "partitionQuery", "batchWrite"):
                verb = v
                rest = rest[:-1] + [base]
        if rest[0] != "documents":
            raise ApiError("NOT_FOUND", "The requested URL %s was not found."
                           % self.rawpath)
        segs = [urllib.parse.unquote(s) for s in rest[1:]]
        if not project or not database:
            raise invalid("Invalid resource name.")
        for i, s in enumerate(segs):
            check_id(s, "Collection" if i % 2 == 0 else "Document")
        path = DbPath(project, database, segs)
        check_path_limits(path.root, path.segs)
        self.streaming = verb in ("runQuery", "batchGet", "runAggregationQuery")
        who = self.check_auth()
        m = self.command
        e = self.entry
        if verb:
            if m != "POST":
                raise ApiError("NOT_FOUND", "The requested URL was not found.")
            e["op"] = verb
            if verb in ("commit", "batchGet", "beginTransaction", "rollback", "batchWrite"):
                if segs:
                    raise ApiError("NOT_FOUND", "The requested URL was not found.")
            elif verb == "batchWrite" and segs:
                raise ApiError("NOT_FOUND", "The requested URL was not found.")
            elif len(segs) % 2:
                raise invalid('Invalid parent "%s": must be a document or the '
                              "database root." % path.name)
            h = getattr(self, "fs_" + verb, None)
            if h is None:
                raise ApiError("UNIMPLEMENTED", "%s is not available over REST "
                               "here." % verb)
            code, obj = h(path, body, who)
            return code, obj, self.streaming
        if not segs:
            raise ApiError("NOT_FOUND", "The requested URL was not found.")
        if len(segs) % 2 == 1:
            if m == "GET":
                e["op"] = "list"
                return (200,) + (self.fs_list(path, body, who),) + (False,)
            if m == "POST":
                e["op"] = "create"
                return (200,) + (self.fs_create(path, body, who),) + (False,)
        else:
            if m == "GET":
                e["op"] = "get"
                return 200, self.fs_get(path, body, who), False
            if m == "PATCH":
                e["op"] = "patch"
                return 200, self.fs_patch(path, body, who), False
            if m == "DELETE":
                e["op"] = "delete"
                return 200, self.fs_delete(path, body, who), False
        raise ApiError("NOT_FOUND", "The requested URL was not found.")

    def mask_param(self, prm, key="mask.fieldPaths"):
        if key not in prm:
            return None
        return [parse_field_path(p) for p in prm[key]]

    def precondition_params(self, prm):
        pre = {}
        if "currentDocument.exists" in prm:
            v = prm["currentDocument.exists"][-1]
            if v not in ("true", "false"):
                raise invalid("Invalid value at 'current_document.exists' "
                              '(TYPE_BOOL), "%s"' % v)
            pre["exists"] = v == "true"
        if "currentDocument.updateTime" in prm:
            pre["updateTime"] = prm["currentDocument.updateTime"][-1]
        if len(pre) > 1:
            raise invalid("A precondition may set only one of exists and "
                          "updateTime.")
        return pre

    def fs_get(self, path, body, who):
        prm = self.params({"mask.fieldPaths", "transaction", "readTime"})
        mask = self.mask_param(prm)
        if "readTime" in prm:
            raise ApiError("UNIMPLEMENTED", "readTime is not supported by this test server.")
        self.check_rules(who, [path.segs], reads=1)
        st = self.server.state.store
        self.entry["reads"] += 1
        with st.lock:
            txn = self.check_txn(prm.get("transaction", [None])[-1])
            self.note_reads(txn, [path.name])
            d = st.docs.get(path.name)
            if d is None:
                raise ApiError("NOT_FOUND", 'Document "%s" not found.' % path.name)
            return doc_json(path.name, d, mask)

    def fs_list(self, path, body, who):
        prm = self.params({"pageSize", "pageToken", "orderBy", "mask.fieldPaths",
                           "showMissing", "transaction", "readTime"})
        mask = self.mask_param(prm)
        self.check_txn(prm.get("transaction", [None])[-1])
        if "readTime" in prm:
            raise ApiError("UNIMPLEMENTED", "readTime is not supported by this test server.")
        size = prm.get("pageSize", [""])[-1]
        if size != "":
            if not INT_RE.match(size) or int(size) < 0 or int(size) > 2147483647:
                raise invalid("Invalid value at 'page_size' (TYPE_INT32), \"%s\"" % size)
            size = int(size)
        else:
            size = 0
        tok = prm.get("pageToken", [""])[-1]
        start = 0
        if tok:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(tok + "==").decode())["o"])
            except Exception:
                raise invalid("Invalid page token.")
        order = [(["__name__"], True)]
        ob = prm.get("orderBy", [""])[-1]
        if ob:
            order = []
            for part in ob.split(","):
                w = part.split()
                if not w or len(w) > 2 or (len(w) == 2 and w[1].lower() not in ("asc", "desc")):
                    raise invalid('Invalid orderBy "%s".' % ob)
                order.append((parse_field_path(w[0], True),
                              not (len(w) == 2 and w[1].lower() == "desc")))
            if not any(p == ["__name__"] for p, _ in order):
                order.append((["__name__"], order[-1][1]))
        show_missing = prm.get("showMissing", ["false"])[-1] == "true"
        self.check_rules(who, [path.segs], reads=1)
        st = self.server.state.store
        parent = path.segs[:-1]
        coll = path.segs[-1]
        q = Query()
        q.order = order
        with st.lock:
            rows, missing = [], set()
            for name, d in st.docs.items():
                sp = split_name(name)
                if sp[0] != path.root:
                    continue
                s = sp[1]
                k = len(parent)
                if len(s) < k + 2 or s[:k] != parent or s[k] != coll:
                    continue
                if len(s) == k + 2:
                    rows.append((name, d))
                elif show_missing:
                    mname = "/".join((path.root,) + s[:k + 2])
                    if mname not in st.docs:
                        missing.add(mname)
            if any(p != ["__name__"] for p, _ in order):
                rows = [r for r in rows if all(doc_field(r[0], r[1], p) is not None
                                               for p, _ in order)]
            rows += [(n, None) for n in missing]
            rows.sort(key=functools.cmp_to_key(lambda a, b: order_key_cmp(q, a, b)))
            page = rows[start:start + size] if size else rows[start:]
            # Like the real service, a full page always carries a token, so
            # the page after it may be empty ({}); clients must loop until
            # no nextPageToken comes back.
            more = size and len(page) == size
            out = {}
            if page:
                out["documents"] = [doc_json(n, d, mask) if d is not None else {"name": n}
                                    for n, d in page]
            if more:
                out["nextPageToken"] = base64.urlsafe_b64encode(
                    json.dumps({"o": start + size}).encode()).decode().rstrip("=")
            self.entry["reads"] += max(1, len(page))
            return out

    def doc_from_body(self, body, where="document"):
        b = self.json_body(body, {"name", "fields", "createTime", "updateTime"}, where)
        return parse_fields(b.get("fields"), where)

    def fs_create(self, path, body, who):
        prm = self.params({"documentId", "mask.fieldPaths"})
        mask = self.mask_param(prm)
        docid = prm.get("documentId", [""])[-1]
        if docid == "":
            docid = auto_id()
        check_id(docid, "Document")
        segs = path.segs + (docid,)
        check_path_limits(path.root, segs)
        name = path.name + "/" + docid
        fields = self.doc_from_body(body)
        self.check_rules(who, [segs])
        sz = doc_size(segs, fields)
        if sz > MAX_DOC:
            raise too_big(name, sz)
        st = self.server.state.store
        with st.lock:
            if name in st.docs:
                raise ApiError("ALREADY_EXISTS", "Document already exists: %s" % name)
            now = st.tick()
            d = Doc(fields, now, now)
            st.put(name, d, now)
            st.publish(now)
            self.entry["writes"] += 1
            return doc_json(name, d, mask)

    def fs_patch(self, path, body, who):
        prm = self.params({"updateMask.fieldPaths", "mask.fieldPaths",
                           "currentDocument.exists", "currentDocument.updateTime"})
        mask = self.mask_param(prm)
        umask = self.mask_param(prm, "updateMask.fieldPaths")
        pre = self.precondition_params(prm)
        fields = self.doc_from_body(body)
        self.check_rules(who, [path.segs])
        st = self.server.state.store
        with st.lock:
            self.apply_writes(path, [("update", path.name, fields, umask, pre, [])])
            d = st.docs[path.name]
            return doc_json(path.name, d, mask)

    def fs_delete(self, path, body, who):
        prm = self.params({"currentDocument.exists", "currentDocument.updateTime"})
        pre = self.precondition_params(prm)
        self.check_rules(who, [path.segs])
        st = self.server.state.store
        with st.lock:
            self.apply_writes(path, [("delete", path.name, None, None, pre, [])])
        return {}

    def check_txn(self, t):
        if t is None or t == "":
            return
        st = self.server.state.store
        if t not in st.txns:
            raise invalid("The referenced transaction has expired or is no "
                          "longer valid.")
        return st.txns[t]

    def note_reads(self, txn, names):
        """Remember the versions a transaction read, to ABORT its commit if
        they change (real Firestore locks them; the visible effect for a
        REST client is the same ABORTED)."""
        if txn is None:
            return
        st = self.server.state.store
        for n in names:
            if n not in txn:
                d = st.docs.get(n)
                txn[n] = d.update if d else None

    def parse_precondition(self, c, where):
        c = message(c, {"exists", "updateTime"}, where)
        if "exists" in c and "updateTime" in c:
            raise invalid("A precondition may set only one of exists and "
                          "updateTime.")
        if "exists" in c and not isinstance(c["exists"], bool):
            raise invalid("Invalid value at '%s.exists' (TYPE_BOOL)." % where)
        return c

    def check_pre(self, pre, name, cur):
        if not pre:
            return
        if "exists" in pre:
            if pre["exists"] and cur is None:
                raise ApiError("NOT_FOUND", "No document to update: %s" % name)
            if not pre["exists"] and cur is not None:
                raise ApiError("ALREADY_EXISTS", "Document already exists: %s" % name)
        if "updateTime" in pre:
            want = parse_ts(pre["updateTime"])
            if want is None:
                raise invalid("Invalid value at 'current_document.update_time' "
                              "(type.googleapis.com/google.protobuf.Timestamp): %s"
                              % json.dumps(pre["updateTime"]))
            have = cur.update if cur is not None else 0   # missing = version 0
            if have != want:
                raise ApiError("FAILED_PRECONDITION",
                               "the stored version (%d) does not match the "
                               "required base version (%d)" % (have, want))

    def parse_transform(self, t, where):
        t = message(t, {"fieldPath", "setToServerValue", "increment", "maximum",
                        "minimum", "appendMissingElements", "removeAllFromArray"},
                    where)
        path = parse_field_path(t.get("fieldPath"))
        kinds = [k for k in t if k != "fieldPath"]
        if len(kinds) != 1:
            raise invalid("A field transform must set exactly one transformation.")
        k = kinds[0]
        if k == "setToServerValue":
            if t[k] != "REQUEST_TIME":
                raise invalid("Invalid value at '%s.set_to_server_value': %s"
                              % (where, json.dumps(t[k])))
            return (path, k, None)
        if k in ("increment", "maximum", "minimum"):
            v = parse_value(t[k], where + "." + k)
            if vkind(v) not in ("integerValue", "doubleValue"):
                raise invalid("%s requires an integer or double value." % k)
            return (path, k, v)
        a = parse_value({"arrayValue": t[k]}, where + "." + k)
        return (path, k, a["arrayValue"].get("values", []))

    def parse_writes(self, path, ws, where0=None):
        root = path.root
        parsed = []
        for i, w in enumerate(ws):
            where = where0 or "writes[%d]" % i
            w = message(w, {"update", "delete", "transform", "verify", "updateMask",
                            "updateTransforms", "currentDocument"}, where)
            ops = [k for k in ("update", "delete", "transform", "verify") if k in w]
            if len(ops) != 1:
                raise invalid("A write must have exactly one of update, delete, "
                              "transform, verify (at '%s')." % where)
            op = ops[0]
            pre = self.parse_precondition(w["currentDocument"], where + ".current_document") \
                if w.get("currentDocument") is not None else {}
            if op != "update" and ("updateMask" in w or "updateTransforms" in w):
                raise invalid("updateMask and updateTransforms are only allowed "
                              "with update (at '%s')." % where)
            trans = []
            umask = None
            if op == "update":
                u = message(w["update"], {"name", "fields", "createTime", "updateTime"},
                            where + ".update")
                name = doc_name_or_error(u.get("name"), root)
                fields = parse_fields(u.get("fields"), where + ".update")
                if w.get("updateMask") is not None:
                    um = message(w["updateMask"], {"fieldPaths"}, where + ".update_mask")
                    umask = [parse_field_path(p) for p in (um.get("fieldPaths") or [])]
                trans = [self.parse_transform(t, "%s.update_transforms[%d]" % (where, j))
                         for j, t in enumerate(w.get("updateTransforms") or [])]
            elif op == "transform":
                tr = message(w["transform"], {"document", "fieldTransforms"}, where + ".transform")
                name = doc_name_or_error(tr.get("document"), root)
                fields = None
                trans = [self.parse_transform(t, "%s.transform.field_transforms[%d]" % (where, j))
                         for j, t in enumerate(tr.get("fieldTransforms") or [])]
                if not trans:
                    raise invalid("A transform must have at least one field transform.")
            else:
                name = doc_name_or_error(w[op], root)
                fields = None
            parsed.append((op, name, fields, umask, pre, trans))
        return parsed

    def fs_commit(self, path, body, who):
        b = self.json_body(body, {"writes", "transaction"})
        self.check_txn(b.get("transaction"))
        ws = b.get("writes") or []
        if not isinstance(ws, list):
            raise invalid("Invalid JSON payload received. 'writes' must be a list.")
        parsed = self.parse_writes(path, ws)
        self.check_rules(who, [split_name(p[1])[1] for p in parsed])
        st = self.server.state.store
        with st.lock:
            t = b.get("transaction")
            if t:
                reads = self.check_txn(t)
                del st.txns[t]
                if reads.get("__readOnly__") and parsed:
                    raise invalid("Cannot modify entities in a read-only transaction.")
                for n, ver in reads.items():
                    if n == "__readOnly__":
                        continue
                    d = st.docs.get(n)
                    if (d.update if d else None) != ver:
                        raise ApiError("ABORTED", "Transaction was aborted: a document "
                                       "it read (%s) has changed since. Please try again." % n)
            results, now = self.apply_writes(path, parsed)
        out = {}
        if results:
            out["writeResults"] = results
        out["commitTime"] = fmt_ts(now)
        return 200, out

    def apply_writes(self, path, parsed):
        """Apply writes in order, all or nothing.  Caller holds the lock."""
        st = self.server.state.store
        now = st.tick()
        overlay = {}
        results = []
        nw = nd = 0
        for op, name, fields, umask, pre, trans in parsed:
            cur = overlay[name] if name in overlay else st.docs.get(name)
            self.check_pre(pre, name, cur)
            if op == "verify":
                results.append({})
                continue
            if op == "delete":
                overlay[name] = None
                results.append({})
                nd += 1
                continue
            if op == "update":
                if umask is None:
                    newf = deepcopy_fields(fields)
                else:
                    newf = deepcopy_fields(cur.fields) if cur else {}
                    for p in umask:
                        v = get_path(fields, p)
                        if v is None:
                            del_path(newf, p)
                        else:
                            set_path(newf, p, deepcopy_fields(v))
                    tidy(newf)
            else:  # transform
                newf = deepcopy_fields(cur.fields) if cur else {}
            tres = []
            for tpath, kind, arg in trans:
                old = get_path(newf, tpath)
                nv = apply_transform(kind, old, arg, now)
                set_path(newf, tpath, nv)
                tres.append(nv if kind in ("setToServerValue", "increment", "maximum", "minimum")
                            else {"nullValue": None})
            tidy(newf)
            segs = split_name(name)[1]
            sz = doc_size(segs, newf)
            if sz > MAX_DOC:
                raise too_big(name, sz)
            if cur is not None and same_values(cur.fields, newf):
                nd_ = Doc(newf, cur.create, cur.update)
            else:
                nd_ = Doc(newf, cur.create if cur else now, now)
            overlay[name] = nd_
            r = {"updateTime": fmt_ts(nd_.update)}
            if tres:
                r["transformResults"] = tres
            results.append(r)
            nw += 1
        for name, d in overlay.items():
            if d is not None or name in st.docs:
                st.put(name, d, now)
        st.publish(now)
        self.entry["writes"] += nw
        self.entry["deletes"] += nd
        return results, now

    def fs_batchGet(self, path, body, who):
        b = self.json_body(body, {"documents", "mask", "transaction",
                                  "newTransaction", "readTime"})
        if "readTime" in b:
            raise ApiError("UNIMPLEMENTED", "readTime is not supported by this test server.")
        mask = None
        if b.get("mask") is not None:
            mk = message(b["mask"], {"fieldPaths"}, "mask")
            mask = [parse_field_path(p) for p in (mk.get("fieldPaths") or [])]
        names = b.get("documents") or []
        if not isinstance(names, list):
            raise invalid("documents must be a list.")
        for n in names:
            doc_name_or_error(n, path.root)
        self.check_rules(who, [split_name(n)[1] for n in names], reads=1)
        st = self.server.state.store
        out = []
        with st.lock:
            t, txn = self.txn_for_read(b)
            if t:
                out.append({"transaction": t})
            self.note_reads(txn, names)
            rt = fmt_ts(st.read_time())
            for n in names:
                d = st.docs.get(n)
                if d is None:
                    out.append({"missing": n, "readTime": rt})
                else:
                    out.append({"found": doc_json(n, d, mask), "readTime": rt})
        self.entry["reads"] += max(1, len(names))
        return 200, out

    def fs_batchWrite(self, path, body, who):
        """Non-atomic: each write succeeds or fails on its own."""
        b = self.json_body(body, {"writes", "labels"})
        ws = b.get("writes") or []
        if not isinstance(ws, list):
            raise invalid("Invalid JSON payload received. 'writes' must be a list.")
        st = self.server.state.store
        results, statuses = [], []
        for i, w in enumerate(ws):
            try:
                parsed = self.parse_writes(path, [w], "writes[%d]" % i)
                self.check_rules(who, [split_name(p[1])[1] for p in parsed])
                with st.lock:
                    r, _ = self.apply_writes(path, parsed)
                results.append(r[0])
                statuses.append({})
            except ApiError as e:
                results.append({})
                statuses.append({"code": GRPC_NUM.get(e.status, 2), "message": e.message})
        out = {}
        if results:
            out["writeResults"] = results
            out["status"] = statuses
        return 200, out

    def new_txn(self, read_only=False):
        t = base64.b64encode(os.urandom(16)).decode()
        self.server.state.store.txns[t] = {"__readOnly__": True} if read_only else {}
        return t

    def txn_for_read(self, b):
        """The transaction a read runs in: an existing one, a new one
        (newTransaction), or None."""
        if b.get("newTransaction") is not None:
            o = message(b["newTransaction"], {"readOnly", "readWrite"}, "new_transaction")
            t = self.new_txn("readOnly" in o)
            return t, self.server.state.store.txns[t]
        if b.get("transaction"):
            return None, self.check_txn(b["transaction"])
        return None, None

    def fs_beginTransaction(self, path, body, who):
        b = self.json_body(body, {"options"})
        o = message(b.get("options") or {}, {"readOnly", "readWrite"}, "options")
        if "readOnly" in o and "readWrite" in o:
            raise invalid("options: set only one of readOnly and readWrite.")
        with self.server.state.store.lock:
            return 200, {"transaction": self.new_txn("readOnly" in o)}

    def fs_rollback(self, path, body, who):
        b = self.json_body(body, {"transaction"})
        if not b.get("transaction"):
            raise invalid("Missing transaction.")
        st = self.server.state.store
        with st.lock:
            self.check_txn(b["transaction"])
            del st.txns[b["transaction"]]
        return 200, {}

    def run_query(self, path, q, who):
        st = self.server.state.store
        if needs_index(q) and not self.server.state.config.get("compositeIndexes"):
            self.entry["reads"] += 1
            raise ApiError("FAILED_PRECONDITION",
                           "The query requires an index. You can create it here: "
                           "https://console.firebase.google.com/v1/r/project/%s/"
                           "firestore/indexes?create_composite=fsserver" % path.project)
        self.check_rules(who, [path.segs + (q.collection,)], reads=1)
        rows, self.skipped = select_rows(st.docs, path, q,
                                         self.server.state.config.get("deny") or [])
        return rows

    def fs_runQuery(self, path, body, who):
        b = self.json_body(body, {"structuredQuery", "transaction", "newTransaction",
                                  "readTime", "explainOptions"})
        if "readTime" in b:
            raise ApiError("UNIMPLEMENTED", "readTime is not supported by this test server.")
        if b.get("structuredQuery") is None:
            raise invalid("A runQuery request needs a structuredQuery.")
        q = parse_structured_query(b["structuredQuery"])
        st = self.server.state.store
        out = []
        with st.lock:
            t, txn = self.txn_for_read(b)
            if t:
                out.append({"transaction": t})
            rows = self.run_query(path, q, who)
            self.note_reads(txn, [n for n, _ in rows])
            rt = fmt_ts(st.read_time())
            for name, d in rows:
                dj = doc_json(name, d, q.select if q.select else None)
                if q.select is not None and q.select and all(p == ["__name__"] for p in q.select):
                    dj.pop("fields", None)
                out.append({"document": dj, "readTime": rt})
            if not rows:
                if out:
                    out[0]["readTime"] = rt
                else:
                    out.append({"readTime": rt})
            if self.skipped:
                for o in out:
                    if "readTime" in o:
                        o["skippedResults"] = self.skipped
                        break
        self.entry["reads"] += max(1, len(rows))
        return 200, out

    def fs_runAggregationQuery(self, path, body, who):
        b = self.json_body(body, {"structuredAggregationQuery", "transaction",
                                  "newTransaction", "readTime", "explainOptions"})
        self.check_txn(b.get("transaction"))
        sa = message(b.get("structuredAggregationQuery") or {},
                     {"structuredQuery", "aggregations"}, "structured_aggregation_query")
        if sa.get("structuredQuery") is None:
            raise invalid("structuredAggregationQuery needs a structuredQuery.")
        q = parse_structured_query(sa["structuredQuery"],
                                   "structured_aggregation_query.structured_query")
        aggs = sa.get("aggregations") or []
        if not aggs or len(aggs) > 5:
            raise invalid("An aggregation query needs 1 to 5 aggregations.")
        st = self.server.state.store
        with st.lock:
            res = {}
            for i, a in enumerate(aggs):
                a = message(a, {"alias", "count", "sum", "avg"}, "aggregations[%d]" % i)
                alias = a.get("alias") or "field_%d" % (i + 1)
                if "count" in a:
                    c = message(a["count"] or {}, {"upTo"}, "count")
                    rows = self.run_query(path, q, who)
                    n = len(rows)
                    if c.get("upTo") is not None:
                        n = min(n, int(c["upTo"]))
                    res[alias] = {"integerValue": str(n)}
                else:
                    k = "sum" if "sum" in a else "avg"
                    fp = parse_field_path(message(message(a[k], {"field"}, k).get("field") or {},
                                                  {"fieldPath"}, k + ".field").get("fieldPath"))
                    rows = self.run_query(path, q, who)
                    vals = [get_path(d.fields, fp) for _, d in rows]
                    vals = [v for v in vals if v and vkind(v) in ("integerValue", "doubleValue")]
                    if k == "sum":
                        if all(vkind(v) == "integerValue" for v in vals):
                            s = sum(int(v["integerValue"]) for v in vals)
                            res[alias] = ({"integerValue": str(s)} if INT64_MIN <= s <= INT64_MAX
                                          else {"doubleValue": float(s)})
                        else:
                            res[alias] = {"doubleValue": float(sum(num(v) for v in vals))}
                    else:
                        res[alias] = ({"doubleValue": sum(num(v) for v in vals) / len(vals)}
                                      if vals else {"nullValue": None})
            rt = fmt_ts(st.read_time())
        self.entry["reads"] += 1
        return 200, [{"result": {"aggregateFields": res}, "readTime": rt}]

    def fs_listCollectionIds(self, path, body, who):
        b = self.json_body(body, {"pageSize", "pageToken", "readTime"})
        st = self.server.state.store
        ids = set()
        n = len(path.segs)
        with st.lock:
            for name in st.docs:
                sp = split_name(name)
                if sp[0] == path.root and len(sp[1]) > n + 1 and sp[1][:n] == path.segs:
                    ids.add(sp[1][n])
        ids = sorted(ids, key=lambda s: s.encode("utf-8", "surrogatepass"))
        start = 0
        if b.get("pageToken"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(b["pageToken"] + "==").decode())["o"])
            except Exception:
                raise invalid("Invalid page token.")
        size = int(b.get("pageSize") or 0)
        page = ids[start:start + size] if size else ids[start:]
        out = {}
        if page:
            out["collectionIds"] = page
        if size and start + size < len(ids):
            out["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": start + size}).encode()).decode().rstrip("=")
        self.entry["reads"] += 1
        return 200, out

    # -- emulator endpoints

    def emulator(self, body):
        raw = self.rawpath.split("/")
        # ['', 'emulator', 'v1', 'projects', P, 'databases', D, 'documents']
        if (self.command == "DELETE" and len(raw) == 8 and raw[5] == "databases"
                and raw[7] == "documents"):
            root = "projects/%s/databases/%s/documents" % (
                urllib.parse.unquote(raw[4]), urllib.parse.unquote(raw[6]))
            st = self.server.state.store
            with st.lock:
                now = st.tick()
                for n in [n for n in st.docs if split_name(n)[0] == root]:
                    st.put(n, None, now)
                st.publish(now)
            self.entry["op"] = "emulator.clear"
            return 200, {}, False
        raise ApiError("NOT_FOUND", "Not found.")

    # -- Identity Toolkit / Secure Token

    def auth_error(self, code, msg):
        e = ApiError(STATUS_OF_CODE.get(code, "INVALID_ARGUMENT"), msg)
        e.code = code
        e.itk = True
        return e

    def check_key(self):
        st = self.server.state
        key = self.query.get("key", [None])[-1]
        if key is None or key == "":
            e = ApiError("PERMISSION_DENIED", "Method doesn't allow unregistered "
                         "callers (callers without established identity). Please "
                         "use API Key or other form of API consumer identity to "
                         "call this API.")
            raise e
        want = st.config.get("apiKey")
        if want and key != want:
            raise invalid("API key not valid. Please pass a valid API key.")

    def issue(self, uid):
        st = self.server.state
        now = int(time.time())
        life = int(st.config.get("tokenLifetime") or 3600)
        proj = st.args.project

        def b64(o):
            return base64.urlsafe_b64encode(json.dumps(o, separators=(",", ":"))
                                            .encode()).decode().rstrip("=")
        payload = {"provider_id": "anonymous", "iss": "https://securetoken.google.com/" + proj,
                   "aud": proj, "auth_time": now, "user_id": uid, "sub": uid,
                   "iat": now, "exp": now + life,
                   "firebase": {"identities": {}, "sign_in_provider": "anonymous"},
                   "nonce": base64.urlsafe_b64encode(os.urandom(6)).decode()}
        tok = b64({"alg": "none", "typ": "JWT"}) + "." + b64(payload) + "."
        with st.log_lock:
            st.tokens[tok] = {"uid": uid, "exp": time.time() + life}
        return tok, life

    def identitytoolkit(self, body):
        st = self.server.state
        p = self.rawpath
        if self.command != "POST":
            raise ApiError("NOT_FOUND", "Not found.")
        self.check_key()
        try:
            b = json.loads(body.decode() or "{}") if body and body.strip() else {}
        except ValueError:
            raise self.auth_error(400, "INVALID_JSON")
        if not isinstance(b, dict):
            raise self.auth_error(400, "INVALID_JSON")
        if p == "/identitytoolkit.googleapis.com/v1/accounts:signUp":
            self.entry["op"] = "auth.signUp"
            if b.get("email") or b.get("password"):
                raise self.auth_error(400, "OPERATION_NOT_ALLOWED : only anonymous "
                                      "sign-up is emulated here")
            uid = "".join(_rng.choice(AUTO_ID_CHARS) for _ in range(28))
            tok, life = self.issue(uid)
            rt = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
            with st.log_lock:
                st.refresh[rt] = uid
                ms = str(int(time.time() * 1000))
                st.users[uid] = {"localId": uid, "createdAt": ms, "lastLoginAt": ms,
                                 "lastRefreshAt": fmt_ts(int(time.time()) * 1000000)}
            return 200, {"kind": "identitytoolkit#SignupNewUserResponse",
                         "idToken": tok, "refreshToken": rt,
                         "expiresIn": str(life), "localId": uid}, False
        if p == "/identitytoolkit.googleapis.com/v1/accounts:lookup":
            self.entry["op"] = "auth.lookup"
            t = st.tokens.get(b.get("idToken") or "")
            if t is None:
                raise self.auth_error(400, "INVALID_ID_TOKEN")
            if t["exp"] <= time.time():
                raise self.auth_error(400, "TOKEN_EXPIRED")
            u = st.users.get(t["uid"])
            if u is None:
                raise self.auth_error(400, "USER_NOT_FOUND")
            return 200, {"kind": "identitytoolkit#GetAccountInfoResponse",
                         "users": [dict(u)]}, False
        if p == "/identitytoolkit.googleapis.com/v1/accounts:delete":
            self.entry["op"] = "auth.delete"
            t = st.tokens.get(b.get("idToken") or "")
            if t is None:
                raise self.auth_error(400, "INVALID_ID_TOKEN")
            if t["exp"] <= time.time():
                raise self.auth_error(400, "TOKEN_EXPIRED")
            uid = t["uid"]
            with st.log_lock:
                for k in [k for k, v in st.tokens.items() if v["uid"] == uid]:
                    del st.tokens[k]
                for k in [k for k, v in st.refresh.items() if v == uid]:
                    del st.refresh[k]
                st.users.pop(uid, None)
            return 200, {"kind": "identitytoolkit#DeleteAccountResponse"}, False
        raise ApiError("NOT_FOUND", "Not found.")

    def securetoken(self, body):
        st = self.server.state
        if self.rawpath != "/securetoken.googleapis.com/v1/token" or self.command != "POST":
            raise ApiError("NOT_FOUND", "Not found.")
        self.entry["op"] = "auth.token"
        self.check_key()
        ctype = (self.headers.get("Content-Type") or "").lower()
        text = (body or b"").decode("utf-8", "replace")
        if "json" in ctype:
            try:
                f = json.loads(text or "{}")
            except ValueError:
                raise self.auth_error(400, "INVALID_JSON")
            f = {snake_of(k): v for k, v in f.items()} if isinstance(f, dict) else {}
        else:
            f = {k: v[-1] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}
        for k, v in self.query.items():
            if k != "key":
                f.setdefault(k, v[-1])
        gt = f.get("grant_type")
        if not gt:
            raise self.auth_error(400, "MISSING_GRANT_TYPE")
        if gt != "refresh_token":
            raise self.auth_error(400, "INVALID_GRANT_TYPE")
        rt = f.get("refresh_token")
        if not rt:
            raise self.auth_error(400, "MISSING_REFRESH_TOKEN")
        if rt not in st.refresh:
            raise self.auth_error(400, "INVALID_REFRESH_TOKEN")
        uid = st.refresh[rt]
        if uid is None:
            raise self.auth_error(400, "TOKEN_EXPIRED")
        tok, life = self.issue(uid)
        return 200, {"access_token": tok, "expires_in": str(life),
                     "token_type": "Bearer", "refresh_token": rt,
                     "id_token": tok, "user_id": uid,
                     "project_id": st.args.project}, False

    # -- test-only side channel

    def control(self, body):
        st = self.server.state
        p = self.rawpath.rstrip("/")
        m = self.command
        try:
            b = json.loads(body.decode() or "null") if body and body.strip() else None
        except ValueError as e:
            raise invalid("control: bad JSON: %s" % e)
        if p == "/_test/dump" and m == "GET":
            proj = self.query.get("project", [None])[-1]
            with st.store.lock:
                names = sorted(st.store.docs, key=ref_key)
                docs = [dict(doc_json(n, st.store.docs[n]),
                             fields=st.store.docs[n].fields)
                        for n in names
                        if proj is None or n.startswith("projects/%s/" % proj)]
            return 200, {"documents": docs}
        if p == "/_test/log":
            if m == "DELETE":
                with st.log_lock:
                    st.log = []
                return 200, {}
            with st.log_lock:
                reqs = list(st.log)
            since = int(self.query.get("since", ["0"])[-1] or 0)
            reqs = [r for r in reqs if r["seq"] > since]
            tot = {"requests": len(reqs),
                   "reads": sum(r["reads"] for r in reqs),
                   "writes": sum(r["writes"] for r in reqs),
                   "deletes": sum(r["deletes"] for r in reqs)}
            return 200, {"requests": reqs, "totals": tot}
        if p == "/_test/faults":
            with st.fault_lock:
                if m == "DELETE":
                    st.faults = []
                    return 200, {}
                if m == "GET":
                    return 200, {"faults": st.faults}
                rules = b if isinstance(b, list) else [b]
                for r in rules:
                    if not isinstance(r, dict):
                        raise invalid("control: a fault is a JSON object")
                    mode = r.get("mode", "error")
                    if mode not in ("error", "drop", "lose_reply", "delay"):
                        raise invalid("control: mode is error|drop|lose_reply|delay")
                    status = r.get("status", "UNAVAILABLE")
                    if isinstance(status, int):
                        status = STATUS_OF_CODE.get(status)
                    if mode == "error" and status not in HTTP_CODE:
                        raise invalid("control: unknown status %r" % r.get("status"))
                    rule = {"mode": mode, "status": status,
                            "count": int(r.get("count", 1)), "skip": int(r.get("skip", 0)),
                            "match": r.get("match") or "", "method": r.get("method") or "",
                            "delayMs": int(r.get("delayMs", 0)), "message": r.get("message"),
                            "fired": 0}
                    st.faults.append(rule)
            return 200, {"faults": st.faults}
        if p == "/_test/config":
            if m == "POST":
                if not isinstance(b, dict):
                    raise invalid("control: config is a JSON object")
                for k, v in b.items():
                    if k not in st.config:
                        raise invalid("control: unknown config key %r" % k)
                    if k == "auth" and not (v in ("open", "issued") or
                                            (isinstance(v, str) and v.startswith("token:"))):
                        raise invalid("control: auth is open|issued|token:T")
                    if k == "deny" and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                        raise invalid("control: deny is a list of collection IDs")
                    if k == "listen" and v not in ("ok", "unimplemented", "no_h2"):
                        raise invalid("control: listen is ok|unimplemented|no_h2")
                    if k == "resumeWindow" and (isinstance(v, bool) or not isinstance(v, (int, float))):
                        raise invalid("control: resumeWindow is a number of seconds")
                    st.config[k] = v
            return 200, st.config
        if p == "/_test/listen":
            if m == "POST":
                return 200, listen_control(st, b)
            with st.store.lock:
                with st.log_lock:
                    streams = sorted(st.listens, key=lambda ls: (ls.entry["conn"], ls.h2.id))
                return 200, {"streams": [ls.describe() for ls in streams]}
        if p == "/_test/expire_tokens" and m == "POST":
            with st.log_lock:
                for t in st.tokens.values():
                    t["exp"] = 0
                if isinstance(b, dict) and b.get("refresh"):
                    for k in st.refresh:
                        st.refresh[k] = None     # refresh answers TOKEN_EXPIRED
            return 200, {}
        if p == "/_test/reset" and m == "POST":
            with st.store.lock:
                st.store.forget()
            with st.log_lock:
                st.log = []
                st.tokens.clear()
                st.refresh.clear()
                st.users.clear()
            with st.fault_lock:
                st.faults = []
            st.reset_config()
            return 200, {}
        raise ApiError("NOT_FOUND", "control: no such switch %s %s" % (m, p))


def _no_pairs_twice(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError('Duplicate key "%s".' % k)
        d[k] = v
    return d


def _no_constant(c):
    raise ValueError("Unexpected token %s (JSON has no NaN or Infinity; "
                     'send "NaN" as a string).' % c)


def strict_json(text):
    """JSON as Google's parser takes it: no NaN/Infinity literals, no
    duplicate keys."""
    obj = json.loads(text, object_pairs_hook=_no_pairs_twice,
                     parse_constant=_no_constant)
    if "\\u" in text:     # a \uD800-style escape may hide a lone surrogate
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("Invalid UTF-8: a lone surrogate in a string.")
    return obj


def frontend_error(e):
    """Errors Google's HTTP front end gives before the backend streams
    anything: these stay plain objects even for streaming methods."""
    return (e.status == "UNAUTHENTICATED" or
            e.message.startswith("Invalid JSON payload received") or
            e.message.startswith("Request payload size exceeds"))


def snake_of(k):
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)


def auth_kind(h):
    if not h:
        return None
    if h == "Bearer owner":
        return "owner"
    return "bearer" if h.startswith("Bearer ") else "other"


def err_body(e):
    out = {"code": e.code, "message": e.message, "status": e.status}
    if getattr(e, "itk", False):
        out = {"code": e.code, "message": e.message,
               "errors": [{"message": e.message, "domain": "global",
                           "reason": "invalid"}],
               "status": e.status}
    return {"error": out}


def too_big(name, sz):
    return invalid("Document '%s' cannot be written because its size (%s bytes) "
                   "exceeds the maximum allowed size of 1,048,576 bytes."
                   % (name, "{:,}".format(sz)))


def apply_transform(kind, old, arg, now):
    if kind == "setToServerValue":
        return {"timestampValue": fmt_ts(now)}
    if kind in ("increment", "maximum", "minimum"):
        if old is None or vkind(old) not in ("integerValue", "doubleValue"):
            return arg
        a, b = num(old), num(arg)
        isd = vkind(old) == "doubleValue" or vkind(arg) == "doubleValue"
        if kind == "increment":
            if isd:
                return {"doubleValue": float(a) + float(b)}
            s = max(INT64_MIN, min(INT64_MAX, a + b))
            return {"integerValue": str(s)}
        if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
            return {"doubleValue": float("nan")}
        if a == b:
            return old
        pick_new = (b > a) if kind == "maximum" else (b < a)
        return arg if pick_new else old
    vals = list(old["arrayValue"].get("values", [])) if old and vkind(old) == "arrayValue" else []
    if kind == "appendMissingElements":
        for e in arg:
            if not any(vcmp(e, x) == 0 and TYPE_ORDER[vkind(e)] == TYPE_ORDER[vkind(x)] for x in vals):
                vals.append(e)
    else:
        vals = [x for x in vals if not any(vcmp(e, x) == 0 for e in arg)]
    return {"arrayValue": {"values": vals}} if vals else {"arrayValue": {}}


# ---------------------------------------------------------------- Listen

# gRPC over HTTP/2 (grpc doc/PROTOCOL-HTTP2.md) on the REST port, as the
# emulator does; the one method served is Listen.
GRPC_SERVICE = "/google.firestore.v1.Firestore/"
LISTEN_PATH = GRPC_SERVICE + "Listen"
MAX_GRPC_RECV = 4 * 1024 * 1024     # gRPC's default largest message received
TOKEN_MAGIC = b"fsL1"               # resume tokens: magic, store epoch, time
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def grpc_frame(msg):
    """5-byte prefix: uncompressed flag, big-endian length."""
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def grpc_escape(msg):
    """grpc-message is percent-encoded outside printable ASCII (and '%')."""
    return "".join(chr(b) if 0x20 <= b <= 0x7e and b != 0x25 else "%%%02X" % b
                   for b in msg.encode("utf-8"))


def grpc_timeout(v):
    """grpc-timeout (8 digits and a unit) -> seconds, or None."""
    if not v or len(v) < 2 or not v[:-1].isdigit() or len(v) > 9 or v[-1] not in TIMEOUT_UNITS:
        return None
    return int(v[:-1]) * TIMEOUT_UNITS[v[-1]]


def resume_token(store, us):
    return TOKEN_MAGIC + store.epoch + struct.pack(">q", us)


def token_time(store, tok):
    """The time a resume token stands for, or None if this store never
    issued it (another run, or before /_test/reset)."""
    if len(tok) != 20 or not tok.startswith(TOKEN_MAGIC) or tok[4:12] != store.epoch:
        return None
    return struct.unpack(">q", tok[12:])[0]


class ListenTarget:
    """One target on a stream: what it selects and what the client holds."""

    def __init__(self, tid):
        self.id = tid
        self.path = None        # query: the parent (DbPath)
        self.q = None
        self.names = None       # documents target: the names
        self.view = {}          # name -> updateTime us the client was sent
        self.once = False
        self.resume = "none"    # none | token | readTime | reset
        self.token = b""
        self.read_us = 0

    def rows(self, docs, deny):
        if self.q is not None:
            return select_rows(docs, self.path, self.q, deny)[0]
        return [(n, docs[n]) for n in self.names if n in docs]

    def describe(self):
        out = {"targetId": self.id, "docs": len(self.view), "resume": self.resume,
               "resumeToken": base64.b64encode(self.token).decode(),
               "readTime": fmt_ts(self.read_us) if self.read_us else None}
        if self.q is not None:
            out["query"] = {"parent": self.path.name, "collectionId": self.q.collection,
                            "allDescendants": self.q.all_desc}
        else:
            out["documents"] = list(self.names)
        return out


class GrpcSink:
    """The handler of a call already answered: ignores what the client sends."""

    def on_data(self, data):
        pass

    def on_end(self):
        pass

    def on_reset(self, code):
        pass


def grpc_app(server, conn_id):
    """h2conn's app: route one HTTP/2 request (a gRPC call)."""
    state = server.state

    def app(conn, st):
        path = st.header(":path") or ""
        ctype = st.header("content-type") or ""
        if st.header(":method") != "POST" or not ctype.startswith("application/grpc"):
            # As the emulator: HTTP/2 carries gRPC only (grpc: 415 for others).
            msg = "fsserver: HTTP/2 serves gRPC only (Content-Type %s)" % (ctype or "missing")
            st.send_headers([(":status", "415"), ("content-type", "text/plain; charset=utf-8"),
                             ("grpc-status", "13"), ("grpc-message", grpc_escape(msg))])
            st.send_data(msg.encode() + b"\n", True)
            return GrpcSink()
        entry = {"method": "POST", "path": path, "query": "", "op": "Listen",
                 "status": 200, "grpcStatus": "OK", "reads": 0, "writes": 0,
                 "deletes": 0, "fault": None, "conn": conn_id, "stream": st.id,
                 "auth": auth_kind(st.header("authorization")), "event": "open"}
        if path != LISTEN_PATH or state.config.get("listen") == "unimplemented":
            entry["op"] = path.rsplit("/", 1)[-1]
            return grpc_refuse(state, st, entry, "UNIMPLEMENTED",
                               "Method not found: %s" % path.lstrip("/"))
        enc = st.header("grpc-encoding")
        if enc and enc != "identity":
            return grpc_refuse(state, st, entry, "UNIMPLEMENTED",
                               "grpc-encoding %s is not supported" % enc,
                               [("grpc-accept-encoding", "identity")])
        if st.header("google-cloud-resource-prefix") is None and \
                st.header("x-goog-request-params") is None:
            # Google's SDKs always send one; the emulator refuses a call
            # without either, with this status and no message.
            return grpc_refuse(state, st, entry, "UNKNOWN", "fsserver: no "
                               "google-cloud-resource-prefix or x-goog-request-params")
        try:
            who = check_auth(state, st.header("authorization"))
        except ApiError as e:
            return grpc_refuse(state, st, entry, e.status, e.message)
        fault = take_fault(state, path, "POST")
        delay = 0.0
        if fault:
            entry["fault"] = fault["mode"]
            if fault["mode"] == "error":
                return grpc_refuse(state, st, entry, fault["status"], fault.get("message") or
                                   DEFAULT_MSG.get(fault["status"], "Injected %s." % fault["status"]))
            if fault["mode"] in ("drop", "lose_reply"):
                entry["status"] = 0
                record(state, entry)
                conn.close()
                return GrpcSink()
            delay = (fault.get("delayMs") or 0) / 1000.0
        return ListenStream(state, conn, st, who, entry, delay)
    return app


def grpc_refuse(state, st, entry, status, message, extra=()):
    """A trailers-only response (PROTOCOL-HTTP2.md) ending the call."""
    entry["grpcStatus"] = status
    entry["event"] = "end"
    record(state, entry)
    # Like the emulator (grpc-java), no RST_STREAM follows: the client
    # ends its half of the stream itself.
    st.send_headers([(":status", "200"), ("content-type", "application/grpc"),
                     ("grpc-status", str(GRPC_NUM.get(status, 2))),
                     ("grpc-message", grpc_escape(message))] + list(extra), True)
    return GrpcSink()


class ListenStream:
    """One Listen call.  The reader thread decodes ListenRequests and
    computes snapshots; writers call store_changed() under the store lock;
    a sender thread sends, each message no earlier than latencyMs after it
    was made, as flow control allows."""

    def __init__(self, state, conn, st, who, entry, delay=0.0):
        self.state = state
        self.store = state.store
        self.conn = conn
        self.h2 = st
        self.who = who
        self.entry = entry
        self.rbuf = bytearray()
        self.targets = {}
        self.auto_ids = None        # True once a target_id 0 was added
        self.database = None
        self.read_us = 0            # last read_time sent: never goes back
        self.cv = threading.Condition()
        self.queue = collections.deque()    # (due, item)
        self.silent = False
        self.finished = False       # no more frames will be sent
        self.gone = False           # the client reset or the connection died
        self.sent = 0
        self.opened = time.time()
        self.deadline = None
        t = grpc_timeout(st.header("grpc-timeout"))
        if t is not None:
            self.deadline = time.monotonic() + t
        self.base_delay = delay
        self.push(("headers",))
        with self.store.lock:
            self.store.listeners.add(self)
        with state.log_lock:
            state.listens.add(self)
        threading.Thread(target=self.sender, daemon=True).start()

    # ---- from the HTTP/2 reader thread

    def on_data(self, data):
        if self.finished:
            return
        self.rbuf += data
        while len(self.rbuf) >= 5:
            flag, n = self.rbuf[0], struct.unpack(">I", self.rbuf[1:5])[0]
            if n > MAX_GRPC_RECV:
                self.end("RESOURCE_EXHAUSTED", "Received message larger than max "
                         "(%d vs. %d)" % (n, MAX_GRPC_RECV))
                return
            if len(self.rbuf) < 5 + n:
                return
            msg = bytes(self.rbuf[5:5 + n])
            del self.rbuf[:5 + n]
            if flag:
                self.end("INTERNAL", "Compressed message without grpc-encoding")
                return
            try:
                req = fs_proto.decode("ListenRequest", msg)
            except fs_proto.ProtoError as e:
                self.end("INTERNAL", "Invalid protobuf byte sequence: %s" % e)
                return
            try:
                self.request(req)
            except ApiError as e:
                self.end(e.status, e.message)
                return
            except Exception as e:  # a bug here must end the call, not hang it
                import traceback
                traceback.print_exc()
                self.end("INTERNAL", "fsserver internal error: %r" % (e,))
                return

    def on_end(self):
        # The client half-closed: the call is over, successfully.
        self.end("OK", "")

    def on_reset(self, code):
        with self.cv:
            self.gone = True
            self.finished = True
            self.cv.notify_all()
        self.close("CANCELLED" if code is not None else "UNAVAILABLE")

    # ---- requests

    def request(self, req):
        db = req.get("database", "")
        if not re.match(r"^projects/[^/]+/databases/[^/]+$", db):
            raise invalid('Invalid database "%s": expected projects/{project_id}/'
                          "databases/{database_id}." % db)
        if self.database is None:
            self.database = db
        elif db != self.database:
            raise invalid("A stream serves one database (%s), not %s." % (self.database, db))
        if "addTarget" in req:
            with self.store.lock:
                self.add_target(req["addTarget"])
        elif "removeTarget" in req:
            with self.store.lock:
                self.remove_target(req["removeTarget"])

    def remove_change(self, tid, status, message):
        self.push_msg({"targetChange": {"targetChangeType": "REMOVE", "targetIds": [tid],
                                        "cause": {"code": GRPC_NUM.get(status, 2),
                                                  "message": message}}})
        self.log("add", tid, grpcStatus=status)

    def add_target(self, t):
        tid = t.get("targetId", 0)
        if tid < 0:
            return self.remove_change(tid, "INVALID_ARGUMENT", "target_id must be positive.")
        if tid == 0:
            if self.auto_ids is False:
                return self.remove_change(0, "INVALID_ARGUMENT", "Mixing server-assigned "
                                          "and client-assigned target ids is not allowed.")
            self.auto_ids = True
            tid = 1
            while tid in self.targets:
                tid += 1
        else:
            if self.auto_ids:   # firestore.proto: then REMOVE at once
                return self.remove_change(tid, "INVALID_ARGUMENT", "Mixing server-assigned "
                                          "and client-assigned target ids is not allowed.")
            self.auto_ids = False
            if tid in self.targets:
                raise invalid("Target id %d already exists on this stream." % tid)
        tg = ListenTarget(tid)
        tg.once = bool(t.get("once"))
        deny = self.state.config.get("deny") or []
        root = self.database + "/documents"
        try:
            if "query" in t:
                qt = t["query"]
                sp = split_name(qt.get("parent", ""))
                if sp is None or len(sp[1]) % 2 or sp[0] != root:
                    raise invalid('Invalid parent "%s" for database "%s".'
                                  % (qt.get("parent", ""), self.database))
                for i, s in enumerate(sp[1]):
                    check_id(s, "Collection" if i % 2 == 0 else "Document")
                if qt.get("structuredQuery") is None:
                    raise invalid("A query target needs a structured_query.")
                proj, db = self.database.split("/")[1::2]
                tg.path = DbPath(proj, db, sp[1])
                tg.q = parse_structured_query(qt["structuredQuery"])
                if needs_index(tg.q) and not self.state.config.get("compositeIndexes"):
                    raise ApiError("FAILED_PRECONDITION", "The query requires an index.")
                colls = [tg.path.segs + (tg.q.collection,)]
            elif "documents" in t:
                names = t["documents"].get("documents") or []
                if not names:
                    raise invalid("A documents target needs at least one document.")
                tg.names = []
                for n in names:
                    doc_name_or_error(n, root)
                    if n not in tg.names:   # duplicates are elided
                        tg.names.append(n)
                colls = [split_name(n)[1] for n in tg.names]
            else:
                raise invalid("A target needs a query or documents.")
            for segs in colls:
                if any(segs[i] in deny for i in range(0, len(segs), 2)):
                    raise ApiError("PERMISSION_DENIED", DEFAULT_MSG["PERMISSION_DENIED"])
            rows = tg.rows(self.store.docs, deny)
        except ApiError as e:
            return self.remove_change(tid, e.status, e.message)
        now = self.store.tick()
        since = None
        if "resumeToken" in t:
            tg.resume = "token"
            since = token_time(self.store, t["resumeToken"])
        elif "readTime" in t:
            tg.resume = "readTime"
            since = parse_ts(t["readTime"])
        window = float(self.state.config.get("resumeWindow", 1800)) * 1e6
        if since is not None and not (self.store.history_floor <= since <= now and
                                      since >= now - window):
            since = None
        self.push_msg({"targetChange": {"targetChangeType": "ADD", "targetIds": [tid]}})
        reads = 0
        if since is not None:
            # Firestore resumes with what changed since; it may forget what
            # was deleted or left the result set, and sends an existence
            # filter (the count now matching) so the client can tell.
            before = {n: d.update for n, d in tg.rows(self.store.docs_at(since), deny)}
            for n, d in rows:
                if before.get(n) != d.update:
                    self.push_msg({"documentChange": {"document": doc_proto(n, d),
                                                      "targetIds": [tid]}})
                    reads += 1
            self.push_msg({"filter": {"targetId": tid, "count": len(rows)}})
        else:
            if tg.resume != "none":
                tg.resume = "reset"
                self.push_msg({"targetChange": {"targetChangeType": "RESET",
                                                "targetIds": [tid]}})
            for n, d in rows:
                self.push_msg({"documentChange": {"document": doc_proto(n, d),
                                                  "targetIds": [tid]}})
            reads = max(1, len(rows))   # a query costs at least one read
        tg.view = {n: d.update for n, d in rows}
        tok = resume_token(self.store, now)
        self.push_msg({"targetChange": {"targetChangeType": "CURRENT", "targetIds": [tid],
                                        "resumeToken": tok}})
        self.targets[tid] = tg
        self.snapshot(now)
        self.log(tg.resume if tg.resume != "none" else "add", tid, reads=reads)
        if tg.once:
            del self.targets[tid]
            self.push_msg({"targetChange": {"targetChangeType": "REMOVE", "targetIds": [tid]}})

    def remove_target(self, tid):
        if tid not in self.targets:
            return self.remove_change(tid, "INVALID_ARGUMENT",
                                      "Target id %d is not on this stream." % tid)
        del self.targets[tid]
        self.push_msg({"targetChange": {"targetChangeType": "REMOVE", "targetIds": [tid]}})
        self.log("remove", tid)

    def snapshot(self, now):
        """The stream is consistent at `now': NO_CHANGE, no target ids."""
        self.read_us = max(self.read_us, now)
        tok = resume_token(self.store, self.read_us)
        for tg in self.targets.values():
            tg.token, tg.read_us = tok, self.read_us
        self.push_msg({"targetChange": {"targetChangeType": "NO_CHANGE", "targetIds": [],
                                        "resumeToken": tok, "readTime": self.read_us}})

    # ---- from writers, store lock held

    def store_changed(self, now):
        if self.finished or not self.targets:
            return
        deny = self.state.config.get("deny") or []
        docs = self.store.docs
        changed = {}    # name -> (Doc, [target ids added/updated], [ids left])
        deleted = {}    # name -> [target ids]
        reads = 0
        for tg in self.targets.values():
            try:
                rows = tg.rows(docs, deny)
            except ApiError:
                continue
            now_in = {}
            for n, d in rows:
                now_in[n] = d.update
                if tg.view.get(n) != d.update:
                    changed.setdefault(n, (d, [], []))[1].append(tg.id)
                    reads += 1      # a read per document added or updated
            for n, up in tg.view.items():
                if n in now_in:
                    continue
                if n in docs:
                    changed.setdefault(n, (docs[n], [], []))[2].append(tg.id)
                    if docs[n].update != up:
                        reads += 1  # left the result set because it changed
                else:
                    deleted.setdefault(n, []).append(tg.id)     # deletes are free
            tg.view = now_in
        if not changed and not deleted:
            return
        for n, (d, added, left) in changed.items():
            if added:
                dc = {"document": doc_proto(n, d), "targetIds": added}
                if left:
                    dc["removedTargetIds"] = left
                self.push_msg({"documentChange": dc})
            else:
                self.push_msg({"documentRemove": {"document": n, "removedTargetIds": left,
                                                  "readTime": now}})
        for n, ids in deleted.items():
            self.push_msg({"documentDelete": {"document": n, "removedTargetIds": ids,
                                              "readTime": now}})
        self.snapshot(now)
        self.log("change", None, reads=reads)

    # ---- sending

    def push(self, item, delay=None):
        lat = (self.state.config.get("latencyMs") or 0) / 1000.0 if delay is None else delay
        with self.cv:
            if self.finished:
                return
            self.queue.append((time.monotonic() + lat + self.base_delay, item))
            self.cv.notify_all()

    def push_msg(self, obj):
        self.push(("data", grpc_frame(fs_proto.encode("ListenResponse", obj))))

    def end(self, status, message):
        """Finish the call with a status (queued behind what is pending)."""
        self.push(("end", status, message))

    def sender(self):
        st = self.h2
        while True:
            with self.cv:
                while True:
                    if self.gone:
                        return
                    now = time.monotonic()
                    if self.deadline is not None and now >= self.deadline:
                        self.queue.clear()
                        item = ("end", "DEADLINE_EXCEEDED", "Deadline exceeded.")
                        self.deadline = None
                        break
                    if self.queue and self.queue[0][0] <= now:
                        item = self.queue.popleft()[1]
                        break
                    wake = [self.deadline] if self.deadline else []
                    if self.queue:
                        wake.append(self.queue[0][0])
                    self.cv.wait(max(0.0, min(wake) - now) if wake else None)
                silent = self.silent
            if silent and item[0] not in ("end", "rst"):
                continue
            if not self.send_item(st, item):
                self.close("UNAVAILABLE")
                return

    def send_item(self, st, item):
        """-> False once nothing more can be sent."""
        kind = item[0]
        if kind == "headers":
            return st.send_headers([(":status", "200"), ("content-type", "application/grpc"),
                                    ("grpc-accept-encoding", "identity")])
        if kind == "data":
            ok = st.send_data(item[1], wait=lambda: not self.gone)
            self.sent += ok
            return ok
        if kind == "flood":
            return self.flood(st, item[1])
        if kind == "end":
            _, status, message = item
            trailers = [("grpc-status", str(GRPC_NUM.get(status, 0)))]
            if message:
                trailers.append(("grpc-message", grpc_escape(message)))
            st.send_headers(trailers, True)
            self.close(status)
            return False
        if kind == "rst":
            st.send_reset(item[1])
            self.close("UNAVAILABLE")
            return False
        return True

    def flood(self, st, count):
        """Document changes for made-up documents, as fast as flow control
        lets them go, never followed by a consistent snapshot."""
        with self.store.lock:
            tids = sorted(self.targets)
            parents = ["%s/%s" % (tg.path.name, tg.q.collection) if tg.q is not None
                       else tg.names[0] + "-flood" for tg in self.targets.values()]
        if not tids:
            return True
        i = 0
        while count < 0 or i < count:
            if self.gone or self.silent:
                return not self.gone
            us = time.time_ns() // 1000
            doc = {"name": "%s/flood%09d" % (parents[0], i),
                   "fields": {"n": {"integerValue": str(i)}, "pad": {"stringValue": "f" * 200}},
                   "createTime": us, "updateTime": us}
            msg = grpc_frame(fs_proto.encode("ListenResponse", {"documentChange": {
                "document": doc, "targetIds": tids}}))
            if not st.send_data(msg, wait=lambda: not self.gone):
                return False
            i += 1
        return True

    def close(self, status):
        with self.cv:
            if getattr(self, "closed", False):
                return
            self.closed = True
            self.finished = True
            self.queue.clear()
            self.cv.notify_all()
        with self.store.lock:
            self.store.listeners.discard(self)
        with self.state.log_lock:
            self.state.listens.discard(self)
        self.log("end", None, grpcStatus=status)

    def log(self, event, tid, reads=0, grpcStatus="OK"):
        e = dict(self.entry, event=event, targetId=tid, reads=reads, grpcStatus=grpcStatus)
        record(self.state, e)

    def describe(self):
        return {"conn": self.entry["conn"], "stream": self.h2.id,
                "database": self.database, "silent": self.silent,
                "opened": fmt_ts(int(self.opened * 1000000)), "messagesSent": self.sent,
                "targets": [tg.describe() for _, tg in sorted(self.targets.items())]}

    # ---- test-only faults (POST /_test/listen)

    def fault(self, action, b):
        if action == "silent":
            with self.cv:
                self.silent = True
                self.queue.clear()
        elif action == "rst":
            self.push(("rst", int(b.get("error", h2conn.INTERNAL_ERROR))), 0)
        elif action == "status":
            code = int(b.get("code", 14))
            name = next((k for k, v in GRPC_NUM.items() if v == code), "UNKNOWN")
            self.push(("end", name if code else "OK", b.get("message") or
                       DEFAULT_MSG.get(name, "Injected %s." % name)), 0)
        elif action == "oversized":
            n = int(b.get("bytes", 64 * 1024 * 1024))
            junk = os.urandom(min(n, int(b.get("junk", 65536))))
            self.push(("data", b"\x00" + struct.pack(">I", n & 0xffffffff) + junk), 0)
        elif action == "malformed":
            # A target_change whose length runs past the end of the message.
            raw = bytes.fromhex(b.get("hex", "126408011a"))
            self.push(("data", grpc_frame(raw)), 0)
        elif action == "flood":
            self.push(("flood", int(b.get("count", -1))), 0)
        elif action == "wrong_target":
            with self.store.lock:
                tid = int(b.get("targetId", max(self.targets or [0]) + 1000))
                us = self.store.tick()
                name = self.database + "/documents/wrong_target/doc%d" % us
            self.push_msg({"documentChange": {"document": {
                "name": name, "fields": {"wrong": {"booleanValue": True}},
                "createTime": us, "updateTime": us}, "targetIds": [tid]}})
            self.push_msg({"targetChange": {"targetChangeType": "CURRENT", "targetIds": [tid],
                                            "resumeToken": resume_token(self.store, us)}})
            with self.store.lock:
                self.snapshot(us)
        elif action == "filter":
            with self.store.lock:
                for tg in self.targets.values():
                    self.push_msg({"filter": {"targetId": tg.id, "count": int(
                        b.get("count", len(tg.view) + 1))}})


def doc_proto(name, d):
    return {"name": name, "fields": d.fields, "createTime": d.create, "updateTime": d.update}


LISTEN_ACTIONS = ("goaway", "rst", "status", "silent", "drop", "oversized",
                  "malformed", "flood", "wrong_target", "filter")


def listen_control(state, b):
    """POST /_test/listen: act on every open Listen stream."""
    if not isinstance(b, dict) or b.get("action") not in LISTEN_ACTIONS:
        raise invalid("control: action is one of %s" % "|".join(LISTEN_ACTIONS))
    action = b["action"]
    with state.log_lock:
        streams = list(state.listens)
    conns = []
    for ls in streams:
        if ls.conn not in conns:
            conns.append(ls.conn)
    if action == "drop":
        for c in conns:
            c.close()
    elif action == "goaway":
        code = int(b.get("error", h2conn.NO_ERROR))
        grace = int(b.get("graceMs", 0)) / 1000.0
        for c in conns:
            c.goaway(code, b"fsserver test goaway", b.get("lastStreamId"))
            threading.Timer(grace, c.close).start()
    else:
        for ls in streams:
            ls.fault(action, b)
    return {"streams": len(streams), "connections": len(conns)}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description="Firestore REST test server "
                                 "(see the module docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--project", default="demo-p2pcat",
                    help="project ID the Auth emulator puts in its tokens")
    ap.add_argument("--auth", default="open", choices=("open", "issued"))
    ap.add_argument("--require-token", help="require exactly this Bearer token")
    ap.add_argument("--deny", action="append", help="collection ID answered with "
                    "PERMISSION_DENIED (repeatable)")
    ap.add_argument("--token-lifetime", type=int, default=3600)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--composite-indexes", action="store_true",
                    help="serve queries that would need a composite index")
    ap.add_argument("--api-key", help="the only API key the Auth endpoints accept")
    ap.add_argument("--resume-window", type=float, default=1800,
                    help="seconds a Listen resume token stays good (Firestore: 30 min)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    srv = Server((args.host, args.port), Handler)
    srv.state = State(args)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    if args.verbose:
        sys.stderr.write("fsserver: listening on %s:%d\n" % (args.host, port))

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.05)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
