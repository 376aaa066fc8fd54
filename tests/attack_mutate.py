#!/usr/bin/env python3
"""attack_mutate.py MODE SEED IN OUT: a hostile variant of a rendezvous blob.

IN is a rendezvous file as signal.c's dir: backend writes it (a text header
ending in an empty line, then the blob); OUT gets the variant of its blob
only.  MODE is one of:
  keep      the blob unchanged (a replay)
  flip      1 to 4 random bits flipped anywhere
  fliptail  1 to 4 random bits flipped in the last 48 bytes (the Noise
            message: keys, ciphertext, tag)
  trunc     cut to a random length from 1 to len - 1
  garbage   random bytes of the same length
  version   another first (version) byte
  tlvlen    the first TLV's length set to 0xffff (runs past the end)
  trailer   64 random bytes after the last TLV
  soup      the version byte, then random TLVs of random types
  cand      the port of the first candidate (TLV 2) plus one: a valid
            blob whose contents changed
Prints what it did on stdout.  Exit 0, or 2 on misuse.
"""
import random
import sys

MODES = ("keep", "flip", "fliptail", "trunc", "garbage", "version",
         "tlvlen", "trailer", "soup", "cand")


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in MODES:
        sys.stderr.write(__doc__)
        return 2
    mode, seed, src, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rnd = random.Random(seed)
    raw = open(src, "rb").read()
    cut = raw.find(b"\n\n")
    if not raw.startswith(b"p2pcat-sig 1\n") or cut < 0:
        sys.stderr.write("attack_mutate.py: %s is not a rendezvous file\n" % src)
        return 2
    b = bytearray(raw[cut + 2:])
    what = mode
    if mode in ("flip", "fliptail"):
        lo = 0 if mode == "flip" else max(0, len(b) - 48)
        bits = sorted(rnd.sample(range(lo * 8, len(b) * 8), rnd.randint(1, 4)))
        for bit in bits:
            b[bit // 8] ^= 1 << (bit % 8)
        what += " bits %s" % bits
    elif mode == "trunc":
        n = rnd.randint(1, len(b) - 1)
        b = b[:n]
        what += " to %d of %d bytes" % (n, len(raw) - cut - 2)
    elif mode == "garbage":
        b = bytearray(rnd.getrandbits(8) for _ in b)
    elif mode == "version":
        b[0] = rnd.choice([v for v in range(256) if v != b[0]])
        what += " %d" % b[0]
    elif mode == "tlvlen":
        b[2:4] = b"\xff\xff"
    elif mode == "trailer":
        b += bytes(rnd.getrandbits(8) for _ in range(64))
    elif mode == "soup":
        out = bytearray(b[:1])
        for _ in range(rnd.randint(1, 12)):
            v = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 4, 8, 20, 32, 48, 96])))
            out += bytes([rnd.randint(0, 8)]) + len(v).to_bytes(2, "big") + v
        b = out
    elif mode == "cand":
        off = 1
        while off + 3 <= len(b) and b[off] != 2:
            off += 3 + int.from_bytes(b[off + 1:off + 3], "big")
        if off + 7 > len(b):
            sys.stderr.write("attack_mutate.py: no candidate in %s\n" % src)
            return 2
        port = int.from_bytes(b[off + 5:off + 7], "big")
        b[off + 5:off + 7] = ((port + 1) & 0xffff).to_bytes(2, "big")
        what += " port %d to %d" % (port, (port + 1) & 0xffff)
    open(dst, "wb").write(b)
    print(what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
