#!/usr/bin/env python3
"""attack_find.py HAYSTACK [-k KEY]... [-w FILE]...: look for secrets in
what an eavesdropper saw (captured packets, rendezvous files).

  -k KEY   a public key as `p2pcat --id' prints it (base64): its 32 raw
           bytes, and the base64 text itself
  -w FILE  plaintext that was sent: 256 windows of 24 bytes at offsets
           spread over FILE (a 24-byte window of random data turns up by
           chance with probability about 2^-192)

Prints what it found.  Exit 0 when nothing was found, 1 when something
was, 2 on misuse.
"""
import base64
import getopt
import sys


def main():
    try:
        opts, args = getopt.gnu_getopt(sys.argv[1:], "k:w:")
    except getopt.GetoptError:
        opts, args = [], []
    if len(args) != 1 or not opts:
        sys.stderr.write(__doc__)
        return 2
    hay = open(args[0], "rb").read()
    found = 0
    for o, v in opts:
        if o == "-k":
            raw = base64.b64decode(v, validate=True)
            for what, needle in (("raw key", raw), ("key text", v.encode())):
                if needle in hay:
                    print("%s: %s %s" % (args[0], what, v))
                    found += 1
        else:
            data = open(v, "rb").read()
            n = 256 if len(data) >= 256 * 24 else max(1, len(data) // 24)
            for i in range(n):
                off = (len(data) - 24) * i // max(1, n - 1) if len(data) > 24 else 0
                if data[off:off + 24] in hay:
                    print("%s: bytes %d-%d of %s" % (args[0], off, off + 23, v))
                    found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
