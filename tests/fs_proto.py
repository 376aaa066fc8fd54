"""fs_proto.py - protobuf encoding (https://protobuf.dev/programming-guides/
encoding/) of the google.firestore.v1 messages that Listen uses, by hand, for
tests/fsserver.py and its tests.  Python 3 standard library only.

Messages convert to and from the proto3 JSON form the REST API uses (lower
camel case names, int64 Value as a string, bytes Value as base64, Timestamp as
RFC 3339, enums by name, Int32Value as a number), so that fsserver.py parses
a Listen query with the very code that parses a runQuery.  Exceptions: resume
tokens stay raw bytes, and timestamps may be given to the encoder as integer
microseconds.  Field numbers follow googleapis google/firestore/v1
(firestore.proto, query.proto, document.proto, write.proto), google/type/
latlng.proto, google/rpc/status.proto and the well-known types.

Decoding is bounded: nesting depth (MAX_DEPTH), varints of at most 10 bytes,
lengths within the message, UTF-8 strings checked; anything else is
ProtoError.  Unknown fields are skipped, as protobuf requires.
"""

import base64
import datetime
import re
import struct

MAX_DEPTH = 64

# Field tables: number -> (json name, type, flags).  Types: string, bytes
# (raw), b64 (bytes shown as base64), bool, int32, int64, int64s (int64 shown
# as a string), double, ts (Timestamp), i32w (Int32Value), enum:NAME,
# map:TYPE (map<string, TYPE>), or a message name.  Flags: "r" repeated,
# "o" or "o:GROUP" member of a oneof (encoded even when it holds a default
# value; a later member of the same group replaces an earlier one).
ENUMS = {
    "NullValue": {0: "NULL_VALUE"},
    "CompositeOp": {0: "OPERATOR_UNSPECIFIED", 1: "AND", 2: "OR"},
    "FieldOp": {0: "OPERATOR_UNSPECIFIED", 1: "LESS_THAN", 2: "LESS_THAN_OR_EQUAL",
                3: "GREATER_THAN", 4: "GREATER_THAN_OR_EQUAL", 5: "EQUAL",
                6: "NOT_EQUAL", 7: "ARRAY_CONTAINS", 8: "IN",
                9: "ARRAY_CONTAINS_ANY", 10: "NOT_IN"},
    "UnaryOp": {0: "OPERATOR_UNSPECIFIED", 2: "IS_NAN", 3: "IS_NULL",
                4: "IS_NOT_NAN", 5: "IS_NOT_NULL"},
    "Direction": {0: "DIRECTION_UNSPECIFIED", 1: "ASCENDING", 2: "DESCENDING"},
    "TargetChangeType": {0: "NO_CHANGE", 1: "ADD", 2: "REMOVE", 3: "CURRENT",
                         4: "RESET"},
}

SCHEMA = {
    "LatLng": {1: ("latitude", "double", ""), 2: ("longitude", "double", "")},
    "Status": {1: ("code", "int32", ""), 2: ("message", "string", "")},
    "Value": {
        11: ("nullValue", "enum:NullValue", "o"), 1: ("booleanValue", "bool", "o"),
        2: ("integerValue", "int64s", "o"), 3: ("doubleValue", "double", "o"),
        10: ("timestampValue", "ts", "o"), 17: ("stringValue", "string", "o"),
        18: ("bytesValue", "b64", "o"), 5: ("referenceValue", "string", "o"),
        8: ("geoPointValue", "LatLng", "o"), 9: ("arrayValue", "ArrayValue", "o"),
        6: ("mapValue", "MapValue", "o"),
        19: ("fieldReferenceValue", "string", "o")},
    "ArrayValue": {1: ("values", "Value", "r")},
    "MapValue": {1: ("fields", "map:Value", "")},
    "Document": {1: ("name", "string", ""), 2: ("fields", "map:Value", ""),
                 3: ("createTime", "ts", ""), 4: ("updateTime", "ts", "")},
    "StructuredQuery": {
        1: ("select", "Projection", ""), 2: ("from", "CollectionSelector", "r"),
        3: ("where", "Filter", ""), 4: ("orderBy", "Order", "r"),
        7: ("startAt", "Cursor", ""), 8: ("endAt", "Cursor", ""),
        6: ("offset", "int32", ""), 5: ("limit", "i32w", ""),
        9: ("findNearest", "Opaque", "")},
    "Opaque": {},
    "CollectionSelector": {2: ("collectionId", "string", ""),
                           3: ("allDescendants", "bool", "")},
    "Filter": {1: ("compositeFilter", "CompositeFilter", "o"),
               2: ("fieldFilter", "FieldFilter", "o"),
               3: ("unaryFilter", "UnaryFilter", "o")},
    "CompositeFilter": {1: ("op", "enum:CompositeOp", ""), 2: ("filters", "Filter", "r")},
    "FieldFilter": {1: ("field", "FieldReference", ""), 2: ("op", "enum:FieldOp", ""),
                    3: ("value", "Value", "")},
    "UnaryFilter": {1: ("op", "enum:UnaryOp", ""), 2: ("field", "FieldReference", "o")},
    "Order": {1: ("field", "FieldReference", ""), 2: ("direction", "enum:Direction", "")},
    "FieldReference": {2: ("fieldPath", "string", "")},
    "Projection": {2: ("fields", "FieldReference", "r")},
    "Cursor": {1: ("values", "Value", "r"), 2: ("before", "bool", "")},
    "ListenRequest": {1: ("database", "string", ""), 2: ("addTarget", "Target", "o"),
                      3: ("removeTarget", "int32", "o"), 4: ("labels", "map:string", "")},
    "Target": {2: ("query", "QueryTarget", "o"), 3: ("documents", "DocumentsTarget", "o"),
               4: ("resumeToken", "bytes", "o:resume"), 11: ("readTime", "ts", "o:resume"),
               5: ("targetId", "int32", ""), 6: ("once", "bool", ""),
               12: ("expectedCount", "i32w", "")},
    "QueryTarget": {1: ("parent", "string", ""),
                    2: ("structuredQuery", "StructuredQuery", "o")},
    "DocumentsTarget": {2: ("documents", "string", "r")},
    "ListenResponse": {2: ("targetChange", "TargetChange", "o"),
                       3: ("documentChange", "DocumentChange", "o"),
                       4: ("documentDelete", "DocumentDelete", "o"),
                       6: ("documentRemove", "DocumentRemove", "o"),
                       5: ("filter", "ExistenceFilter", "o")},
    "TargetChange": {1: ("targetChangeType", "enum:TargetChangeType", ""),
                     2: ("targetIds", "int32", "r"), 3: ("cause", "Status", ""),
                     4: ("resumeToken", "bytes", ""), 6: ("readTime", "ts", "")},
    "DocumentChange": {1: ("document", "Document", ""), 5: ("targetIds", "int32", "r"),
                       6: ("removedTargetIds", "int32", "r")},
    "DocumentDelete": {1: ("document", "string", ""), 6: ("removedTargetIds", "int32", "r"),
                       4: ("readTime", "ts", "")},
    "DocumentRemove": {1: ("document", "string", ""), 2: ("removedTargetIds", "int32", "r"),
                       4: ("readTime", "ts", "")},
    "ExistenceFilter": {1: ("targetId", "int32", ""), 2: ("count", "int32", "")},
}
# json name -> number, per message
BY_NAME = {m: {f[0]: n for n, f in fields.items()} for m, fields in SCHEMA.items()}

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
SCALAR_WIRE = {"bool": VARINT, "int32": VARINT, "int64": VARINT, "int64s": VARINT,
               "double": I64}
TS_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")
MIN_TS, MAX_TS = -62135596800, 253402300799     # google/protobuf/timestamp.proto


class ProtoError(Exception):
    pass


# ---------------------------------------------------------------- wire

def put_varint(out, v):
    if v < 0:
        v += 1 << 64                    # negative ints take ten bytes
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)


def get_varint(buf, pos):
    v = shift = 0
    for i in range(10):
        if pos >= len(buf):
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7f) << shift
        if not b & 0x80:
            return v & ((1 << 64) - 1), pos
        shift += 7
    raise ProtoError("varint longer than 10 bytes")


def fields_of(buf):
    """Yield (number, wire type, value) over a message: ints for VARINT, I64
    and I32 (raw bytes), memoryview for LEN."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = get_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0 or num > 536870911:
            raise ProtoError("bad field number %d" % num)
        if wt == VARINT:
            v, pos = get_varint(buf, pos)
        elif wt == I64:
            if pos + 8 > n:
                raise ProtoError("truncated fixed64")
            v = bytes(buf[pos:pos + 8])
            pos += 8
        elif wt == I32:
            if pos + 4 > n:
                raise ProtoError("truncated fixed32")
            v = bytes(buf[pos:pos + 4])
            pos += 4
        elif wt == LEN:
            ln, pos = get_varint(buf, pos)
            if ln > n - pos:
                raise ProtoError("length %d beyond the message" % ln)
            v = buf[pos:pos + ln]
            pos += ln
        else:                           # groups: not in these protos
            raise ProtoError("wire type %d" % wt)
        yield num, wt, v


# ---------------------------------------------------------------- timestamps

EPOCH = datetime.datetime(1970, 1, 1)


def fmt_ts(seconds, nanos):
    if not (MIN_TS <= seconds <= MAX_TS) or not (0 <= nanos <= 999999999):
        raise ProtoError("timestamp out of range")
    d = EPOCH + datetime.timedelta(seconds=seconds)
    s = "%04d" % d.year + d.strftime("-%m-%dT%H:%M:%S")
    if nanos:
        frac = "%09d" % nanos
        while frac.endswith("000"):
            frac = frac[:-3]
        s += "." + frac
    return s + "Z"


def parse_ts(s):
    """RFC 3339 (Z form, as stored) -> (seconds, nanos)."""
    m = TS_RE.match(s)
    if not m:
        raise ProtoError("bad timestamp %r" % s)
    d = datetime.datetime(*(int(x) for x in m.groups()[:6]))
    return (d - EPOCH) // datetime.timedelta(seconds=1), int((m.group(7) or "0").ljust(9, "0"))


def ts_value(v):
    """Microseconds (int) or RFC 3339 (str) -> (seconds, nanos)."""
    if isinstance(v, int):
        s, us = divmod(v, 1000000)
        return s, us * 1000
    return parse_ts(v)


# ---------------------------------------------------------------- decoding

def decode(msg, buf, depth=0):
    """Bytes -> the proto3 JSON form of message `msg' (a dict)."""
    if depth > MAX_DEPTH:
        raise ProtoError("messages nested more than %d deep" % MAX_DEPTH)
    schema = SCHEMA[msg]
    out = {}
    for num, wt, v in fields_of(buf):
        f = schema.get(num)
        if f is None:
            continue
        name, typ, flags = f
        if flags.startswith("o"):                # 'last one wins' within a oneof
            for other in schema.values():
                if other[2] == flags and other[0] != name and other[0] in out:
                    del out[other[0]]
        if flags == "r" and typ in SCALAR_WIRE and wt == LEN:      # packed
            vals = []
            pos = 0
            while pos < len(v):
                x, pos = get_varint(v, pos)
                vals.append(_scalar(typ, VARINT, x))
            out.setdefault(name, []).extend(vals)
            continue
        val = _one(typ, wt, v, depth)
        if flags == "r":
            out.setdefault(name, []).append(val)
        elif typ.startswith("map:"):
            out.setdefault(name, {}).update(val)
        else:
            out[name] = val
    return out


def _scalar(typ, wt, v):
    if wt != SCALAR_WIRE[typ]:
        raise ProtoError("wire type %d for a %s" % (wt, typ))
    if typ == "double":
        return struct.unpack("<d", v)[0]
    if typ == "bool":
        return v != 0
    if v >= 1 << 63:
        v -= 1 << 64
    if typ == "int32":
        v = ((v + (1 << 31)) & 0xffffffff) - (1 << 31)
    return str(v) if typ == "int64s" else v


def _one(typ, wt, v, depth):
    if typ in SCALAR_WIRE:
        return _scalar(typ, wt, v)
    if typ.startswith("enum:"):
        if wt != VARINT:
            raise ProtoError("wire type %d for an enum" % wt)
        v = v if v < 1 << 31 else v - (1 << 64)
        return ENUMS[typ[5:]].get(v, v)
    if wt != LEN:
        raise ProtoError("wire type %d for a %s" % (wt, typ))
    if typ == "string":
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtoError("string is not UTF-8")
    if typ == "bytes":
        return bytes(v)
    if typ == "b64":
        return base64.b64encode(v).decode()
    if typ == "ts":
        t = {1: 0, 2: 0}
        for num, fwt, x in fields_of(v):
            if num in t:
                t[num] = _scalar("int64" if num == 1 else "int32", fwt, x)
        return fmt_ts(t[1], t[2])
    if typ == "i32w":
        n = 0
        for num, fwt, x in fields_of(v):
            if num == 1:
                n = _scalar("int32", fwt, x)
        return n
    if typ.startswith("map:"):
        key, val = "", None
        for num, fwt, x in fields_of(v):
            if num == 1:
                key = _one("string", fwt, x, depth)
            elif num == 2:
                val = _one(typ[4:], fwt, x, depth + 1)
        if val is None:                 # an absent value is its default
            val = {} if typ[4:] in SCHEMA else ""
        return {key: val}
    return decode(typ, v, depth + 1)


# ---------------------------------------------------------------- encoding

def encode(msg, obj):
    """The proto3 JSON form of message `msg' -> bytes."""
    out = bytearray()
    _encode_into(out, msg, obj)
    return bytes(out)


def _key(out, num, wt):
    put_varint(out, (num << 3) | wt)


def _encode_into(out, msg, obj):
    nums = BY_NAME[msg]
    schema = SCHEMA[msg]
    for name, val in obj.items():
        if val is None and msg != "Value":
            continue
        num = nums.get(name)
        if num is None:
            raise ProtoError("%s has no field %s" % (msg, name))
        _, typ, flags = schema[num]
        if flags == "r":
            if typ in SCALAR_WIRE:      # proto3 packs repeated scalars
                if val:
                    body = bytearray()
                    for x in val:
                        put_varint(body, int(x))
                    _key(out, num, LEN)
                    put_varint(out, len(body))
                    out += body
            else:
                for x in val:
                    _field(out, num, typ, x, True)
        elif typ.startswith("map:"):
            for k, x in val.items():
                body = bytearray()
                _field(body, 1, "string", k, False)
                _field(body, 2, typ[4:], x, True)
                _key(out, num, LEN)
                put_varint(out, len(body))
                out += body
        else:
            _field(out, num, typ, val, flags.startswith("o"))


def _field(out, num, typ, val, always):
    if typ in ("bool", "int32", "int64", "int64s") or typ.startswith("enum:"):
        if typ.startswith("enum:"):
            if isinstance(val, str) or val is None:
                names = {v: k for k, v in ENUMS[typ[5:]].items()}
                val = names[val] if val is not None else 0
        n = int(val)
        if n or always:
            _key(out, num, VARINT)
            put_varint(out, n)
    elif typ == "double":
        if val or always:
            _key(out, num, I64)
            out += struct.pack("<d", float(val))
    elif typ in ("string", "bytes", "b64"):
        b = val.encode("utf-8", "surrogatepass") if typ == "string" else \
            (base64.b64decode(val) if typ == "b64" else bytes(val))
        if b or always:
            _key(out, num, LEN)
            put_varint(out, len(b))
            out += b
    else:
        body = bytearray()
        if typ == "ts":
            s, ns = ts_value(val)
            _field(body, 1, "int64", s, False)
            _field(body, 2, "int32", ns, False)
        elif typ == "i32w":
            _field(body, 1, "int32", val, False)
        else:
            _encode_into(body, typ, val)
        _key(out, num, LEN)
        put_varint(out, len(body))
        out += body

