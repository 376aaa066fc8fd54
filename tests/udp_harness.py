#!/usr/bin/env python3
"""Drive `p2pcat -u' with exact message boundaries.

p2pcat's stdin and stdout are SOCK_SEQPACKET socket pairs: every read(2)
p2pcat makes returns one record we wrote, and every write(2) it makes is
one record we read.  So the records we get back are its datagrams.

    udp_harness.py listen OUTFILE [PAUSE] -- P2PCAT ARGS...   records received,
        one per line (hex); PAUSE seconds before each read make a slow reader
    udp_harness.py call COUNT SEED -- P2PCAT ARGS...  send COUNT random records
Prints the records sent (call) or received (listen) as hex lines to
OUTFILE / stdout, and exits with p2pcat's status.
"""
import random
import socket
import subprocess
import sys
import time


def main():
    mode = sys.argv[1]
    sep = sys.argv.index("--")
    cmd = sys.argv[sep + 1:]
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if mode == "listen":
        out = open(sys.argv[2], "w")
        pause = float(sys.argv[3]) if sep > 3 else 0
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=theirs.fileno())
        theirs.close()
        while True:
            time.sleep(pause)
            rec = mine.recv(65536)
            if not rec:
                break
            out.write(rec.hex() + "\n")
            out.flush()
        sys.exit(p.wait())
    count, seed = int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    p = subprocess.Popen(cmd, stdin=theirs.fileno(), stdout=subprocess.DEVNULL)
    theirs.close()
    for i in range(count):
        n = rng.randint(1, 1100)
        rec = i.to_bytes(4, "big") + bytes(rng.getrandbits(8) for _ in range(n))
        mine.send(rec)
        print(rec.hex())
    mine.shutdown(socket.SHUT_WR)
    sys.exit(p.wait())


main()
