"""h2client.py - a deliberately raw HTTP/2 + gRPC client for the tests of
tests/fsserver.py (t_fsserver_h2.py, listen_wire.py): it sends exactly the
frames it is told to, so tests can also send wrong ones.  Python 3 standard
library only (plus tests/hpack.py and tests/fs_proto.py).
"""

import socket
import struct
import time

import fs_proto
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
LISTEN = "/google.firestore.v1.Firestore/Listen"


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def settings(**kw):
    ids = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3,
           "initial_window_size": 4, "max_frame_size": 5, "max_header_list_size": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kw.items()))


def grpc_msg(body, flag=0):
    return bytes([flag]) + struct.pack(">I", len(body)) + body


def listen_headers(path=LISTEN, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "localhost"), ("content-type", "application/grpc"),
            ("te", "trailers")] + list(extra)


def incremental(headers):
    """A header block using literals with incremental indexing and Huffman,
    then the same headers again as indexed fields: exercises the server's
    dynamic table (returns the two blocks)."""
    first = bytearray()
    for n, v in headers:
        first += b"\x40" + hpack.encode_str(n, True) + hpack.encode_str(v, True)
    second = bytearray()
    for i in range(len(headers)):       # newest entry is index 62
        second += hpack.encode_int(62 + len(headers) - 1 - i, 7, 0x80)
    return bytes(first), bytes(second)


class Client:
    def __init__(self, host, port, timeout=5.0, preface=True, settings_frame=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.dec = hpack.Decoder()
        self.eof = False
        self.calls = {}         # stream id -> Call, for frames read by any
        if preface:
            self.sock.sendall(PREFACE + (settings_frame if settings_frame is not None else settings()))

    def send(self, data):
        self.sock.sendall(data)

    def headers(self, sid, headers, end_stream=False, huffman=True):
        block = hpack.encode(headers, huffman)
        self.send(frame(HEADERS, 0x4 | (1 if end_stream else 0), sid, block))

    def data(self, sid, payload, end_stream=False):
        self.send(frame(DATA, 1 if end_stream else 0, sid, payload))

    def listen(self, sid, request, extra=None):
        """Open a Listen call on stream sid and send one ListenRequest; the
        metadata Google's SDKs send unless `extra' says otherwise."""
        if extra is None:
            db = request["database"] if request else ""
            extra = [("google-cloud-resource-prefix", db), ("authorization", "Bearer owner")]
        self.headers(sid, listen_headers(extra=extra))
        if request is not None:
            self.data(sid, grpc_msg(fs_proto.encode("ListenRequest", request)))

    def read_frame(self, timeout=5.0):
        """-> (type, flags, sid, payload) or None at EOF / timeout."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff,
                         self.buf[9:9 + n])
                    self.buf = self.buf[9 + n:]
                    return f
            left = end - time.monotonic()
            if left <= 0 or self.eof:
                return None
            self.sock.settimeout(left)
            try:
                got = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                got = b""
            if not got:
                self.eof = True
            self.buf += got

    def frames(self, timeout=1.0, until=None):
        """Frames until `until(frame)' is true (that one included) or quiet."""
        out = []
        while True:
            f = self.read_frame(timeout)
            if f is None:
                return out
            out.append(f)
            if until and until(f):
                return out

    def decode_headers(self, payload):
        return {n.decode(): v.decode() for n, v in self.dec.decode(payload)[0]}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Call:
    """What came back on one stream: headers, messages, trailers, resets."""

    def __init__(self, client, sid):
        self.c, self.sid = client, sid
        client.calls[sid] = self
        self.headers = None
        self.trailers = None
        self.messages = []
        self.rst = None
        self.goaway = None
        self.raw = b""
        self.data_bytes = 0

    def pump(self, timeout=1.0, until=None):
        """Read frames (answering PINGs is not needed: the server never
        pings), decoding this stream's; stop when `until(self)' or quiet."""
        while True:
            if until and until(self):
                return True
            f = self.c.read_frame(timeout)
            if f is None:
                return bool(until and until(self))
            ftype, flags, sid, p = f
            if ftype == GOAWAY:
                self.goaway = struct.unpack(">II", p[:8]) + (p[8:],)
            owner = self.c.calls.get(sid)
            if owner is not None:
                owner.take(ftype, flags, p)
            elif ftype == HEADERS:
                self.c.dec.decode(p)            # keep the HPACK state right

    def take(self, ftype, flags, p):
        if ftype == HEADERS:
            h = self.c.decode_headers(p)
            if self.headers is None and ":status" in h:
                self.headers = h
                if flags & 1:
                    self.trailers = h       # trailers-only
            else:
                self.trailers = h
        elif ftype == DATA:
            self.data_bytes += len(p)
            self.raw += p
            while len(self.raw) >= 5:
                n = struct.unpack(">I", self.raw[1:5])[0]
                if len(self.raw) < 5 + n:
                    break
                self.messages.append(fs_proto.decode("ListenResponse", self.raw[5:5 + n]))
                self.raw = self.raw[5 + n:]
        elif ftype == RST_STREAM:
            self.rst = struct.unpack(">I", p)[0]

    def kinds(self):
        """Messages in brief: 'ADD:1', 'change:name', 'delete:name', ...
        (names without the database prefix)."""
        out = []
        for m in self.messages:
            k = next(iter(m))
            v = m[k]
            if k == "targetChange":
                t = v.get("targetChangeType", "NO_CHANGE")
                ids = ",".join(str(i) for i in v.get("targetIds", []))
                out.append("%s:%s" % (t, ids) if ids else t)
            elif k == "documentChange":
                out.append("change:%s" % v["document"]["name"].split("/documents/")[1])
            elif k in ("documentDelete", "documentRemove"):
                out.append("%s:%s" % (k[8:].lower(), v["document"].split("/documents/")[1]))
            elif k == "filter":
                out.append("filter:%d" % v.get("count", 0))
        return out
