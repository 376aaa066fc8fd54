#!/usr/bin/env python3
"""httpproxy.py - a plain HTTP/1.1 forward proxy, for p2pcat's tests: the
kind of proxy that stands between a client and a server that speaks
HTTP/2 with prior knowledge, and carries only HTTP/1.1.

    python3 tests/httpproxy.py PORT_FILE

It writes the port it listens on (127.0.0.1) to PORT_FILE.  For each
connection it reads one request in absolute form ("POST http://h:p/path
HTTP/1.1"), opens a connection to h:p, sends the request line in origin
form and everything else as it comes, and relays the answer back, until
either side closes.  No CONNECT.  Python 3 standard library only.
"""
import socket
import sys
import threading
import urllib.parse


def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(c):
    buf = b""
    while b"\r\n" not in buf and len(buf) < 8192:
        b = c.recv(8192)
        if not b:
            c.close()
            return
        buf += b
    line, rest = buf.split(b"\r\n", 1)
    try:
        method, url, version = line.decode("latin-1").split(" ")
        u = urllib.parse.urlsplit(url)
        o = socket.create_connection((u.hostname, u.port or 80), timeout=10)
    except (ValueError, OSError):
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    o.settimeout(None)
    path = u.path + ("?" + u.query if u.query else "")
    o.sendall(("%s %s %s\r\n" % (method, path, version)).encode("latin-1") + rest)
    threading.Thread(target=pump, args=(o, c), daemon=True).start()
    pump(c, o)


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    with open(sys.argv[1], "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
