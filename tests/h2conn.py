"""h2conn.py - the server side of one HTTP/2 connection (RFC 9113) with prior
knowledge, for tests/fsserver.py's gRPC methods.  Python 3 standard library
only (plus tests/hpack.py).

One thread reads frames (Connection.run); any thread may send on a stream.
Frames, SETTINGS and their ACK, PING, WINDOW_UPDATE and flow control both
ways, HEADERS/CONTINUATION, DATA, RST_STREAM, GOAWAY, PRIORITY (read and
ignored), several streams at once; frames of unknown type are ignored (5.5).
Bounded against a hostile client: frames larger than our
SETTINGS_MAX_FRAME_SIZE (FRAME_SIZE_ERROR), header blocks (MAX_HEADER_BLOCK
bytes, MAX_CONTINUATIONS frames: ENHANCE_YOUR_CALM), decoded header lists
(MAX_HEADER_LIST: that stream gets 431), concurrent streams (MAX_STREAMS:
REFUSED_STREAM), windows (FLOW_CONTROL_ERROR).  A connection error sends
GOAWAY, lingers briefly so the peer can read it, and closes.

The application sees streams through a handler made by app(conn, stream)
once a request's header block is complete; the handler gets on_data(bytes),
on_end() (the client half-closed) and on_reset(code) (RST_STREAM from the
client, or None when the connection died), always from the reader thread.
"""

import select
import socket
import struct
import threading
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"        # 3.4

# 6: frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# 7: error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, \
    SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, \
    CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)
# 6.5.2: settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, \
    MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = range(1, 7)

DEFAULT_WINDOW = 65535          # 6.9.2: initial windows, stream and connection
MAX_WINDOW = (1 << 31) - 1      # 6.9.1
MIN_MAX_FRAME = 16384           # 6.5.2: SETTINGS_MAX_FRAME_SIZE bounds
MAX_MAX_FRAME = (1 << 24) - 1

# Our own limits, advertised in our SETTINGS where there is a setting.
MAX_STREAMS = 100
MAX_HEADER_LIST = 16384
MAX_HEADER_BLOCK = 65536
MAX_CONTINUATIONS = 64
LINGER = 1.0                    # seconds to drain reads after a GOAWAY

# 8.2.2: connection-specific fields a request must not carry.
CONNECTION_FIELDS = {b"connection", b"keep-alive", b"proxy-connection",
                     b"transfer-encoding", b"upgrade"}


class ConnError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


class StreamError(Exception):
    def __init__(self, sid, code, msg):
        super().__init__(msg)
        self.sid, self.code = sid, code


def is_preface(sock, timeout=10.0):
    """Does the client start with the HTTP/2 connection preface?  Peeks,
    so an HTTP/1.1 request stays unread for the HTTP/1.1 handler."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = sock.recv(len(PREFACE), socket.MSG_PEEK)
        except OSError:
            return False
        if not got or not PREFACE.startswith(got):
            return False
        if len(got) == len(PREFACE):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        # Wait for more than what is already queued.
        time.sleep(min(0.01, left))


def frame_bytes(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


class Stream:
    def __init__(self, conn, sid, send_window):
        self.conn = conn
        self.id = sid
        self.headers = []           # [(name str, value str)]
        self.send_window = send_window
        self.recv_window = DEFAULT_WINDOW
        self.remote_closed = False  # the client sent END_STREAM
        self.local_closed = False   # we sent END_STREAM (or a reset happened)
        self.reset = False
        self.handler = None

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def open(self):
        return not self.reset and not self.local_closed and not self.conn.dead

    def send_headers(self, headers, end_stream=False):
        return self.conn.send_headers(self, headers, end_stream)

    def send_data(self, data, end_stream=False, wait=None):
        return self.conn.send_data(self, data, end_stream, wait)

    def send_reset(self, code):
        self.conn.send_reset(self, code)


class Connection:
    def __init__(self, sock, app, log=None):
        self.sock = sock
        self.app = app
        self.log = log or (lambda msg: None)
        self.wlock = threading.Lock()
        self.flow = threading.Condition()
        self.dead = False
        self.streams = {}               # open (not closed) streams by id
        self.last_sid = 0               # highest client stream id seen
        self.conn_send_window = DEFAULT_WINDOW
        self.conn_recv_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = MIN_MAX_FRAME
        self.hpack = hpack.Decoder(4096)
        self.rbuf = bytearray()
        self.goaway_sent = False
        self.peer_goaway = False
        self.frames_in = 0

    # ---- reading

    def _read(self, n):
        while len(self.rbuf) < n:
            try:
                got = self.sock.recv(65536)
            except OSError:
                got = b""
            if not got:
                raise EOFError()
            self.rbuf += got
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def _read_frame(self):
        h = self._read(9)
        length = int.from_bytes(h[:3], "big")
        ftype, flags, sid = h[3], h[4], int.from_bytes(h[5:9], "big") & 0x7fffffff
        if length > MIN_MAX_FRAME:      # 4.2: we never raise our MAX_FRAME_SIZE
            raise ConnError(FRAME_SIZE_ERROR, "frame of %d bytes" % length)
        return ftype, flags, sid, self._read(length)

    def run(self):
        try:
            if self._read(len(PREFACE)) != PREFACE:
                raise ConnError(PROTOCOL_ERROR, "bad connection preface")
            self.write(frame_bytes(SETTINGS, 0, 0, struct.pack(
                ">HIHI", MAX_CONCURRENT_STREAMS, MAX_STREAMS,
                MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST)))
            ftype, flags, sid, payload = self._read_frame()
            if ftype != SETTINGS or flags & ACK:    # 3.4: SETTINGS comes first
                raise ConnError(PROTOCOL_ERROR, "the preface is not followed by SETTINGS")
            self.on_settings(flags, sid, payload)
            while not self.dead:
                ftype, flags, sid, payload = self._read_frame()
                self.frames_in += 1
                try:
                    self.on_frame(ftype, flags, sid, payload)
                except StreamError as e:
                    self.log("h2: stream %d error %d: %s" % (e.sid, e.code, e))
                    st = self.streams.get(e.sid)
                    if st is not None:
                        self.send_reset(st, e.code)
                    else:
                        self.write(frame_bytes(RST_STREAM, 0, e.sid, struct.pack(">I", e.code)))
        except ConnError as e:
            self.log("h2: connection error %d: %s" % (e.code, e))
            self.goaway(e.code, str(e).encode()[:200])
            self.linger()
        except hpack.HpackError as e:   # 4.3: a decoding error ends the connection
            self.log("h2: HPACK: %s" % e)
            self.goaway(COMPRESSION_ERROR, str(e).encode()[:200])
            self.linger()
        except EOFError:
            pass
        finally:
            self.close()

    def on_frame(self, ftype, flags, sid, payload):
        if ftype == DATA:
            self.on_data(flags, sid, payload)
        elif ftype == HEADERS:
            self.on_headers(flags, sid, payload)
        elif ftype == PRIORITY:
            if sid == 0:
                raise ConnError(PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                raise StreamError(sid, FRAME_SIZE_ERROR, "PRIORITY of %d bytes" % len(payload))
        elif ftype == RST_STREAM:
            self.on_rst(sid, payload)
        elif ftype == SETTINGS:
            self.on_settings(flags, sid, payload)
        elif ftype == PUSH_PROMISE:     # 8.4: clients cannot push
            raise ConnError(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif ftype == PING:
            if sid != 0:
                raise ConnError(PROTOCOL_ERROR, "PING on a stream")
            if len(payload) != 8:
                raise ConnError(FRAME_SIZE_ERROR, "PING of %d bytes" % len(payload))
            if not flags & ACK:
                self.write(frame_bytes(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            if sid != 0:
                raise ConnError(PROTOCOL_ERROR, "GOAWAY on a stream")
            if len(payload) < 8:
                raise ConnError(FRAME_SIZE_ERROR, "GOAWAY of %d bytes" % len(payload))
            self.peer_goaway = True
        elif ftype == WINDOW_UPDATE:
            self.on_window_update(sid, payload)
        elif ftype == CONTINUATION:
            raise ConnError(PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        # 5.5: frames of unknown type are ignored.

    def _idle(self, sid):
        return sid > self.last_sid or (sid % 2 == 0)

    def _strip_padding(self, flags, payload, sid):
        if flags & PADDED:
            if not payload:
                raise ConnError(FRAME_SIZE_ERROR, "PADDED frame without a pad length")
            pad = payload[0]
            if pad > len(payload) - 1:    # 6.1: padding as long as the payload
                raise ConnError(PROTOCOL_ERROR, "padding exceeds the frame")
            return payload[1:len(payload) - pad]
        return payload

    def on_data(self, flags, sid, payload):
        if sid == 0:
            raise ConnError(PROTOCOL_ERROR, "DATA on stream 0")
        if self._idle(sid):
            raise ConnError(PROTOCOL_ERROR, "DATA on idle stream %d" % sid)
        # 6.9.1: the whole frame, padding included, counts against the windows.
        n = len(payload)
        self.conn_recv_window -= n
        if self.conn_recv_window < 0:
            raise ConnError(FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        if self.conn_recv_window < DEFAULT_WINDOW // 2:
            self.write(frame_bytes(WINDOW_UPDATE, 0, 0, struct.pack(
                ">I", DEFAULT_WINDOW - self.conn_recv_window)))
            self.conn_recv_window = DEFAULT_WINDOW
        data = self._strip_padding(flags, payload, sid)
        st = self.streams.get(sid)
        if st is None or st.remote_closed or st.reset:
            raise StreamError(sid, STREAM_CLOSED, "DATA on closed stream %d" % sid)
        st.recv_window -= n
        if st.recv_window < 0:
            raise StreamError(sid, FLOW_CONTROL_ERROR, "DATA beyond the stream window")
        if st.recv_window < DEFAULT_WINDOW // 2 and not flags & END_STREAM:
            self.write(frame_bytes(WINDOW_UPDATE, 0, sid, struct.pack(
                ">I", DEFAULT_WINDOW - st.recv_window)))
            st.recv_window = DEFAULT_WINDOW
        if data and st.handler:
            st.handler.on_data(data)
        if flags & END_STREAM:
            self._remote_end(st)

    def _remote_end(self, st):
        st.remote_closed = True
        if st.handler:
            st.handler.on_end()
        self._maybe_forget(st)

    def _maybe_forget(self, st):
        if (st.remote_closed and st.local_closed) or st.reset:
            self.streams.pop(st.id, None)
            with self.flow:
                self.flow.notify_all()

    def _header_block(self, flags, sid, first):
        """The whole field block: the HEADERS fragment and its CONTINUATIONs."""
        block = bytearray(first)
        n = 0
        while not flags & END_HEADERS:
            ftype, flags, csid, payload = self._read_frame()
            if ftype != CONTINUATION or csid != sid:    # 6.10
                raise ConnError(PROTOCOL_ERROR, "expected CONTINUATION of stream %d" % sid)
            n += 1
            block += payload
            if len(block) > MAX_HEADER_BLOCK or n > MAX_CONTINUATIONS:
                raise ConnError(ENHANCE_YOUR_CALM, "header block too large")
        return bytes(block)

    def on_headers(self, flags, sid, payload):
        if sid == 0:
            raise ConnError(PROTOCOL_ERROR, "HEADERS on stream 0")
        frag = self._strip_padding(flags, payload, sid)
        dep = None
        if flags & PRIORITY_FLAG:
            if len(frag) < 5:
                raise ConnError(FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            dep = int.from_bytes(frag[:4], "big") & 0x7fffffff
            frag = frag[5:]
        # Decode before any stream error, so the HPACK state stays in sync.
        block = self._header_block(flags, sid, frag)
        headers, size = self.hpack.decode(block, MAX_HEADER_LIST)
        if dep == sid:
            raise StreamError(sid, PROTOCOL_ERROR, "stream depends on itself")
        st = self.streams.get(sid)
        if st is not None:              # trailers (8.1): must end the stream
            if st.remote_closed:
                raise StreamError(sid, STREAM_CLOSED, "HEADERS on a half-closed stream")
            if not flags & END_STREAM:
                raise StreamError(sid, PROTOCOL_ERROR, "trailers without END_STREAM")
            self._remote_end(st)
            return
        if sid % 2 == 0 or sid <= self.last_sid:    # 5.1.1
            if sid % 2 == 0 or self.goaway_sent:
                raise ConnError(PROTOCOL_ERROR, "HEADERS on stream %d" % sid)
            raise ConnError(STREAM_CLOSED, "HEADERS on closed stream %d" % sid)
        self.last_sid = sid
        if self.goaway_sent:
            return                      # 6.8: streams after our GOAWAY are ignored
        if len(self.streams) >= MAX_STREAMS:    # 5.1.2
            raise StreamError(sid, REFUSED_STREAM, "too many streams")
        st = Stream(self, sid, self.peer_initial_window)
        self.streams[sid] = st
        if flags & END_STREAM:
            st.remote_closed = True
        if size > MAX_HEADER_LIST:      # RFC 9113 10.5.1 / RFC 6585 431
            self.log("h2: stream %d: header list of %d bytes" % (sid, size))
            self.send_headers(st, [(":status", "431")], True)
            if not st.remote_closed:
                self.send_reset(st, NO_ERROR)
            return
        st.headers = check_request(sid, headers)
        st.handler = self.app(self, st)
        if st.remote_closed and st.handler:
            st.handler.on_end()
            self._maybe_forget(st)

    def on_rst(self, sid, payload):
        if len(payload) != 4:
            raise ConnError(FRAME_SIZE_ERROR, "RST_STREAM of %d bytes" % len(payload))
        if sid == 0 or self._idle(sid):
            raise ConnError(PROTOCOL_ERROR, "RST_STREAM on idle stream %d" % sid)
        st = self.streams.get(sid)
        if st is None:
            return
        st.reset = True
        self._maybe_forget(st)
        if st.handler:
            st.handler.on_reset(int.from_bytes(payload, "big"))

    def on_settings(self, flags, sid, payload):
        if sid != 0:
            raise ConnError(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise ConnError(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise ConnError(FRAME_SIZE_ERROR, "SETTINGS of %d bytes" % len(payload))
        for i in range(0, len(payload), 6):
            ident, value = struct.unpack(">HI", payload[i:i + 6])
            if ident == ENABLE_PUSH and value > 1:
                raise ConnError(PROTOCOL_ERROR, "ENABLE_PUSH %d" % value)
            elif ident == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnError(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE %d" % value)
                with self.flow:         # 6.9.2: the change applies to open streams
                    delta = value - self.peer_initial_window
                    self.peer_initial_window = value
                    for st in self.streams.values():
                        st.send_window += delta
                        if st.send_window > MAX_WINDOW:
                            raise ConnError(FLOW_CONTROL_ERROR, "window overflow")
                    self.flow.notify_all()
            elif ident == MAX_FRAME_SIZE:
                if not MIN_MAX_FRAME <= value <= MAX_MAX_FRAME:
                    raise ConnError(PROTOCOL_ERROR, "MAX_FRAME_SIZE %d" % value)
                self.peer_max_frame = value
            # HEADER_TABLE_SIZE: our encoder never indexes; others: advisory.
        self.write(frame_bytes(SETTINGS, ACK, 0))

    def on_window_update(self, sid, payload):
        if len(payload) != 4:
            raise ConnError(FRAME_SIZE_ERROR, "WINDOW_UPDATE of %d bytes" % len(payload))
        inc = int.from_bytes(payload, "big") & 0x7fffffff
        if sid == 0:
            if inc == 0:
                raise ConnError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            with self.flow:
                self.conn_send_window += inc
                if self.conn_send_window > MAX_WINDOW:
                    raise ConnError(FLOW_CONTROL_ERROR, "connection window overflow")
                self.flow.notify_all()
            return
        if self._idle(sid):
            raise ConnError(PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream %d" % sid)
        st = self.streams.get(sid)
        if st is None:
            return                      # 6.9: closed streams may still get some
        if inc == 0:
            raise StreamError(sid, PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
        with self.flow:
            st.send_window += inc
            if st.send_window > MAX_WINDOW:
                raise StreamError(sid, FLOW_CONTROL_ERROR, "stream window overflow")
            self.flow.notify_all()

    # ---- writing (any thread)

    def write(self, data):
        with self.wlock:
            if self.dead:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.dead = True
        with self.flow:
            self.flow.notify_all()
        return False

    def send_headers(self, st, headers, end_stream=False):
        if not st.open:
            return False
        block = hpack.encode(headers)
        frames = bytearray()
        chunks = [block[i:i + self.peer_max_frame]
                  for i in range(0, len(block), self.peer_max_frame)] or [b""]
        for i, c in enumerate(chunks):
            flags = END_HEADERS if i == len(chunks) - 1 else 0
            if i == 0:
                flags |= END_STREAM if end_stream else 0
            frames += frame_bytes(HEADERS if i == 0 else CONTINUATION, flags, st.id, c)
        ok = self.write(bytes(frames))     # one write: nothing between the frames
        if end_stream:
            st.local_closed = True
            # 8.1: a response complete before the request may end the
            # stream with RST_STREAM NO_ERROR; gRPC servers do (grpc-go's
            # writeStatus), and clients whose upload never ends need it.
            if not st.remote_closed:
                self.send_reset(st, NO_ERROR)
            self._maybe_forget(st)
        return ok

    def send_data(self, st, data, end_stream=False, wait=None):
        """Send as flow control allows; blocks while a window is empty.
        `wait' (a callable) may return False to give up waiting.
        -> False if the stream or connection ended first."""
        view = memoryview(data)
        while True:
            with self.flow:
                while len(view) and st.open and (self.conn_send_window <= 0 or st.send_window <= 0):
                    if wait is not None and not wait():
                        return False
                    self.flow.wait(0.5)
                if not st.open:
                    return False
                n = min(len(view), self.conn_send_window, st.send_window, self.peer_max_frame)
                self.conn_send_window -= n
                st.send_window -= n
            last = n == len(view)
            flags = END_STREAM if (last and end_stream) else 0
            if not self.write(frame_bytes(DATA, flags, st.id, bytes(view[:n]))):
                return False
            view = view[n:]
            if last:
                break
        if end_stream:
            st.local_closed = True
            self._maybe_forget(st)
        return True

    def send_reset(self, st, code):
        if st.reset:
            return
        st.reset = True
        self.write(frame_bytes(RST_STREAM, 0, st.id, struct.pack(">I", code)))
        self.streams.pop(st.id, None)
        with self.flow:
            self.flow.notify_all()

    def goaway(self, code, debug=b"", last_sid=None):
        self.goaway_sent = True
        sid = self.last_sid if last_sid is None else last_sid
        self.write(frame_bytes(GOAWAY, 0, 0, struct.pack(">II", sid, code) + debug))

    def linger(self):
        """Half-close and drain, so the peer reads our GOAWAY instead of
        a TCP reset for unread data."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            end = time.monotonic() + LINGER
            while time.monotonic() < end:
                r, _, _ = select.select([self.sock], [], [], max(0, end - time.monotonic()))
                if r and not self.sock.recv(65536):
                    break
        except OSError:
            pass

    def close(self):
        """Drop the TCP connection; every stream still open hears on_reset(None)."""
        with self.wlock:
            self.dead = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.flow:
            self.flow.notify_all()
        for st in list(self.streams.values()):
            self.streams.pop(st.id, None)
            if st.handler and not st.reset:
                st.reset = True
                st.handler.on_reset(None)


def check_request(sid, headers):
    """8.3.1 / 8.2: a well-formed request's fields, as [(str, str)]."""
    out = []
    pseudo_done = False
    seen = set()
    for n, v in headers:
        if n != n.lower() or not n:
            raise StreamError(sid, PROTOCOL_ERROR, "field name %r is not lowercase" % n)
        if n.startswith(b":"):
            if pseudo_done:
                raise StreamError(sid, PROTOCOL_ERROR, "pseudo-header after a field")
            if n not in (b":method", b":scheme", b":path", b":authority") or n in seen:
                raise StreamError(sid, PROTOCOL_ERROR, "bad pseudo-header %r" % n)
            seen.add(n)
        else:
            pseudo_done = True
            if n in CONNECTION_FIELDS or (n == b"te" and v != b"trailers"):
                raise StreamError(sid, PROTOCOL_ERROR, "connection-specific field %r" % n)
        out.append((n.decode("latin-1"), v.decode("latin-1")))
    if not {b":method", b":scheme", b":path"} <= seen:
        raise StreamError(sid, PROTOCOL_ERROR, "a required pseudo-header is missing")
    return out
