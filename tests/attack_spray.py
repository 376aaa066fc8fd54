#!/usr/bin/env python3
"""attack_spray.py [-c CID] [-d SECS] [-s SEED] HOST:PORT: hostile datagrams.
attack_spray.py -p OFFER: print the caller's connection id (8 hex digits)
and UDP port that an offer file of the dir: rendezvous shows.

Sends, for SECS seconds (default 2), round after round of:
  - random datagrams of random sizes (0 to 1600 bytes);
  - 0xE1 followed by every type byte 0-255, a random connection id and a
    random body;
  - truncated headers: 0xE1, then 0 to 13 bytes;
  - with -c (the target's connection id, 8 hex digits, which the
    rendezvous shows for a caller): DATA packets for that id, both key
    phases, packet numbers near the start of the session and far ahead,
    random ciphertext and tag, sizes 6 to 1500; and KNOCKs and HELLOs for
    it.
At the end prints one line: "sent N datagrams, M authenticable" where M
counts DATA packets for the id that are long enough for p2pcat's record
layer to check and count (header, packet number and tag: 30 bytes).
Exit 0, or 2 on misuse.
"""
import getopt
import os
import random
import socket
import sys
import time

MAGIC = 0xE1
HELLO, KNOCK, DATA = 1, 2, 3
DATA_OVERHEAD = 6 + 8 + 16


def parse_offer(path):
    """The CID and the first CAND's port of an offer (session.c's TLVs)."""
    raw = open(path, "rb").read()
    b = raw[raw.find(b"\n\n") + 2:]
    off, cid, port = 1, None, None
    while off + 3 <= len(b):
        t, n = b[off], int.from_bytes(b[off + 1:off + 3], "big")
        v = b[off + 3:off + 3 + n]
        if t == 1 and n == 4:
            cid = v.hex()
        elif t == 2 and n >= 4 and port is None:
            port = int.from_bytes(v[2:4], "big")
        off += 3 + n
    if cid is None or port is None:
        sys.stderr.write("attack_spray.py: no CID or CAND in %s\n" % path)
        return 2
    print(cid, port)
    return 0


def main():
    try:
        opts, args = getopt.getopt(sys.argv[1:], "c:d:p:s:")
    except getopt.GetoptError:
        opts, args = [], []
    o = dict(opts)
    if "-p" in o and not args:
        return parse_offer(o["-p"])
    if len(args) != 1 or ":" not in args[0]:
        sys.stderr.write(__doc__)
        return 2
    host, port = args[0].rsplit(":", 1)
    cid = bytes.fromhex(o["-c"]) if "-c" in o else None
    if cid is not None and len(cid) != 4:
        sys.stderr.write("attack_spray.py: want a 4-byte connection id\n")
        return 2
    secs = float(o.get("-d", "2"))
    rnd = random.Random(int(o.get("-s", "1")))
    fam = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    dst = (host.strip("[]"), int(port))
    sent = authenticable = 0

    def rb(n):
        return bytes(rnd.getrandbits(8) for _ in range(n))

    def send(pkt):
        nonlocal sent
        try:
            sock.sendto(pkt, dst)
            sent += 1
        except OSError:
            pass  # ECONNREFUSED from an earlier datagram, ENOBUFS
        if sent % 64 == 0:
            time.sleep(0.001)  # a spray, not a flood that only fills buffers

    end = time.monotonic() + secs
    while time.monotonic() < end:
        for _ in range(32):
            send(rb(rnd.randint(0, 1600)))
        for t in range(256):
            send(bytes([MAGIC, t]) + rb(4) + rb(rnd.randint(0, 80)))
        for n in range(14):
            send(bytes([MAGIC]) + rb(n))
        if cid is None:
            continue
        for _ in range(128):
            phase = rnd.choice([0, 0x80])
            pn = rnd.choice([rnd.randint(0, 4096), rnd.randint(0, 1 << 40),
                             (1 << 64) - 1])
            size = rnd.choice([rnd.randint(6, 29), rnd.randint(30, 1500), 30])
            pkt = bytes([MAGIC, DATA | phase]) + cid + pn.to_bytes(8, "big")
            pkt = (pkt + rb(size))[:size]
            send(pkt)
            if len(pkt) >= DATA_OVERHEAD:
                authenticable += 1
        send(bytes([MAGIC, KNOCK]) + cid + rb(4))
        send(bytes([MAGIC, HELLO]) + cid + rb(4) + rb(rnd.randint(0, 200)))
    print("sent %d datagrams, %d authenticable" % (sent, authenticable))
    return 0


if __name__ == "__main__":
    sys.exit(main())
