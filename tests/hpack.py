"""hpack.py - HPACK (RFC 7541) header compression for tests/fsserver.py's
HTTP/2 server and the raw HTTP/2 tests.  Python 3 standard library only.

Decoder: every representation of section 6 (indexed, literal with / without
/ never indexing, dynamic table size update), the dynamic table (section 4)
and the Huffman code (section 5.2, Appendix B).  What a hostile peer could
inflate is bounded: integers (at most 2^32 - 1), string lengths (the bytes
left in the block), the decoded header list (max_list: past it, fields are
no longer kept but the table is still updated, so the connection stays in
sync and the caller can refuse the request).

Encoder: literals without indexing (section 6.2.2), so it never needs the
peer's dynamic table; Huffman optional (the tests use it to exercise the
decoder).
"""

# RFC 7541 Appendix A: the static table, index 1..61.
STATIC = [(n.encode(), v.encode()) for n, v in (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"),
    (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"),
    (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""),
    ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""),
    ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""),
    ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""),
    ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
    ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""),
    ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
    ("proxy-authorization", ""), ("range", ""), ("referer", ""),
    ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
    ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""))]

# RFC 7541 Appendix B: the Huffman code of symbols 0..256 (256 is EOS),
# each "code/length" with the code right-aligned, as the RFC's hex column.
HUFFMAN_TABLE = """
    0x1ff8/13 0x7fffd8/23 0xfffffe2/28 0xfffffe3/28 0xfffffe4/28 0xfffffe5/28
    0xfffffe6/28 0xfffffe7/28 0xfffffe8/28 0xffffea/24 0x3ffffffc/30 0xfffffe9/28
    0xfffffea/28 0x3ffffffd/30 0xfffffeb/28 0xfffffec/28 0xfffffed/28 0xfffffee/28
    0xfffffef/28 0xffffff0/28 0xffffff1/28 0xffffff2/28 0x3ffffffe/30 0xffffff3/28
    0xffffff4/28 0xffffff5/28 0xffffff6/28 0xffffff7/28 0xffffff8/28 0xffffff9/28
    0xffffffa/28 0xffffffb/28 0x14/6 0x3f8/10 0x3f9/10 0xffa/12
    0x1ff9/13 0x15/6 0xf8/8 0x7fa/11 0x3fa/10 0x3fb/10
    0xf9/8 0x7fb/11 0xfa/8 0x16/6 0x17/6 0x18/6
    0x0/5 0x1/5 0x2/5 0x19/6 0x1a/6 0x1b/6
    0x1c/6 0x1d/6 0x1e/6 0x1f/6 0x5c/7 0xfb/8
    0x7ffc/15 0x20/6 0xffb/12 0x3fc/10 0x1ffa/13 0x21/6
    0x5d/7 0x5e/7 0x5f/7 0x60/7 0x61/7 0x62/7
    0x63/7 0x64/7 0x65/7 0x66/7 0x67/7 0x68/7
    0x69/7 0x6a/7 0x6b/7 0x6c/7 0x6d/7 0x6e/7
    0x6f/7 0x70/7 0x71/7 0x72/7 0xfc/8 0x73/7
    0xfd/8 0x1ffb/13 0x7fff0/19 0x1ffc/13 0x3ffc/14 0x22/6
    0x7ffd/15 0x3/5 0x23/6 0x4/5 0x24/6 0x5/5
    0x25/6 0x26/6 0x27/6 0x6/5 0x74/7 0x75/7
    0x28/6 0x29/6 0x2a/6 0x7/5 0x2b/6 0x76/7
    0x2c/6 0x8/5 0x9/5 0x2d/6 0x77/7 0x78/7
    0x79/7 0x7a/7 0x7b/7 0x7ffe/15 0x7fc/11 0x3ffd/14
    0x1ffd/13 0xffffffc/28 0xfffe6/20 0x3fffd2/22 0xfffe7/20 0xfffe8/20
    0x3fffd3/22 0x3fffd4/22 0x3fffd5/22 0x7fffd9/23 0x3fffd6/22 0x7fffda/23
    0x7fffdb/23 0x7fffdc/23 0x7fffdd/23 0x7fffde/23 0xffffeb/24 0x7fffdf/23
    0xffffec/24 0xffffed/24 0x3fffd7/22 0x7fffe0/23 0xffffee/24 0x7fffe1/23
    0x7fffe2/23 0x7fffe3/23 0x7fffe4/23 0x1fffdc/21 0x3fffd8/22 0x7fffe5/23
    0x3fffd9/22 0x7fffe6/23 0x7fffe7/23 0xffffef/24 0x3fffda/22 0x1fffdd/21
    0xfffe9/20 0x3fffdb/22 0x3fffdc/22 0x7fffe8/23 0x7fffe9/23 0x1fffde/21
    0x7fffea/23 0x3fffdd/22 0x3fffde/22 0xfffff0/24 0x1fffdf/21 0x3fffdf/22
    0x7fffeb/23 0x7fffec/23 0x1fffe0/21 0x1fffe1/21 0x3fffe0/22 0x1fffe2/21
    0x7fffed/23 0x3fffe1/22 0x7fffee/23 0x7fffef/23 0xfffea/20 0x3fffe2/22
    0x3fffe3/22 0x3fffe4/22 0x7ffff0/23 0x3fffe5/22 0x3fffe6/22 0x7ffff1/23
    0x3ffffe0/26 0x3ffffe1/26 0xfffeb/20 0x7fff1/19 0x3fffe7/22 0x7ffff2/23
    0x3fffe8/22 0x1ffffec/25 0x3ffffe2/26 0x3ffffe3/26 0x3ffffe4/26 0x7ffffde/27
    0x7ffffdf/27 0x3ffffe5/26 0xfffff1/24 0x1ffffed/25 0x7fff2/19 0x1fffe3/21
    0x3ffffe6/26 0x7ffffe0/27 0x7ffffe1/27 0x3ffffe7/26 0x7ffffe2/27 0xfffff2/24
    0x1fffe4/21 0x1fffe5/21 0x3ffffe8/26 0x3ffffe9/26 0xffffffd/28 0x7ffffe3/27
    0x7ffffe4/27 0x7ffffe5/27 0xfffec/20 0xfffff3/24 0xfffed/20 0x1fffe6/21
    0x3fffe9/22 0x1fffe7/21 0x1fffe8/21 0x7ffff3/23 0x3fffea/22 0x3fffeb/22
    0x1ffffee/25 0x1ffffef/25 0xfffff4/24 0xfffff5/24 0x3ffffea/26 0x7ffff4/23
    0x3ffffeb/26 0x7ffffe6/27 0x3ffffec/26 0x3ffffed/26 0x7ffffe7/27 0x7ffffe8/27
    0x7ffffe9/27 0x7ffffea/27 0x7ffffeb/27 0xffffffe/28 0x7ffffec/27 0x7ffffed/27
    0x7ffffee/27 0x7ffffef/27 0x7fffff0/27 0x3ffffee/26 0x3fffffff/30
"""
HUFFMAN = [tuple(int(x, 0) for x in item.split("/"))
           for item in HUFFMAN_TABLE.split()]
EOS = 256
# (length, code) -> symbol, for bit-at-a-time decoding.
_HUFF_DECODE = {(n, c): sym for sym, (c, n) in enumerate(HUFFMAN)}
MAX_INT = (1 << 32) - 1
ENTRY_OVERHEAD = 32       # RFC 7541 4.1: an entry's size is name + value + 32


class HpackError(Exception):
    """A COMPRESSION_ERROR (RFC 9113 4.3): the connection cannot go on."""


def huffman_encode(data):
    acc = nbits = 0
    for b in data:
        c, n = HUFFMAN[b]
        acc = (acc << n) | c
        nbits += n
    pad = -nbits % 8          # 5.2: padded with the most significant bits of EOS
    acc = (acc << pad) | ((1 << pad) - 1)
    return acc.to_bytes((nbits + pad) // 8, "big")


def huffman_decode(data):
    out = bytearray()
    code = n = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            n += 1
            sym = _HUFF_DECODE.get((n, code))
            if sym is None:
                if n > 30:
                    raise HpackError("bad Huffman code")
                continue
            if sym == EOS:    # 5.2: EOS in a string is a decoding error
                raise HpackError("EOS in a Huffman string")
            out.append(sym)
            code = n = 0
    # 5.2: padding longer than 7 bits, or not the prefix of EOS, is an error.
    if n > 7 or code != (1 << n) - 1:
        raise HpackError("bad Huffman padding")
    return bytes(out)


def encode_int(value, prefix_bits, first=0):
    """RFC 7541 5.1; `first' holds the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_int(buf, pos, prefix_bits):
    """-> (value, new position).  Bounded to MAX_INT."""
    if pos >= len(buf):
        raise HpackError("truncated integer")
    limit = (1 << prefix_bits) - 1
    value = buf[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(buf):
            raise HpackError("truncated integer")
        b = buf[pos]
        pos += 1
        value += (b & 127) << shift
        shift += 7
        if value > MAX_INT:
            raise HpackError("integer too large")
        if not b & 128:
            return value, pos


def encode_str(s, huffman=False):
    if isinstance(s, str):
        s = s.encode("utf-8")
    if huffman:
        h = huffman_encode(s)
        return encode_int(len(h), 7, 0x80) + h
    return encode_int(len(s), 7) + s


def encode(headers, huffman=False):
    """[(name, value)] -> a header block of literals without indexing."""
    out = bytearray()
    for name, value in headers:
        out += b"\x00" + encode_str(name, huffman) + encode_str(value, huffman)
    return bytes(out)


class Decoder:
    def __init__(self, max_table=4096):
        self.limit = max_table      # our SETTINGS_HEADER_TABLE_SIZE
        self.max_size = max_table   # the size the encoder chose (<= limit)
        self.table = []             # newest first
        self.size = 0

    def _evict(self):
        while self.size > self.max_size:
            n, v = self.table.pop()
            self.size -= len(n) + len(v) + ENTRY_OVERHEAD

    def _add(self, name, value):
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + ENTRY_OVERHEAD
        self._evict()     # 4.4: an entry larger than the table empties it

    def _get(self, index):
        if index == 0:
            raise HpackError("index 0")
        if index <= len(STATIC):
            return STATIC[index - 1]
        i = index - len(STATIC) - 1
        if i >= len(self.table):
            raise HpackError("index %d beyond the tables" % index)
        return self.table[i]

    def _str(self, buf, pos):
        if pos >= len(buf):
            raise HpackError("truncated string")
        huff = buf[pos] & 0x80
        n, pos = decode_int(buf, pos, 7)
        if n > len(buf) - pos:
            raise HpackError("string longer than the block")
        s = bytes(buf[pos:pos + n])
        return (huffman_decode(s) if huff else s), pos + n

    def decode(self, block, max_list=1 << 20):
        """-> (headers [(name bytes, value bytes)], list_size).  Past
        max_list (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE), headers stops
        growing while list_size still counts, so the caller sees the excess."""
        headers = []
        total = 0
        pos = 0
        seen_field = False
        while pos < len(block):
            b = block[pos]
            if b & 0x80:                                    # 6.1 indexed
                idx, pos = decode_int(block, pos, 7)
                name, value = self._get(idx)
            elif b & 0xc0 == 0x40:                          # 6.2.1 incremental
                idx, pos = decode_int(block, pos, 6)
                name = self._get(idx)[0] if idx else None
                if name is None:
                    name, pos = self._str(block, pos)
                value, pos = self._str(block, pos)
                self._add(name, value)
            elif b & 0xe0 == 0x20:                          # 6.3 size update
                if seen_field:      # 4.2: only at the start of a block
                    raise HpackError("table size update after a field")
                size, pos = decode_int(block, pos, 5)
                if size > self.limit:
                    raise HpackError("table size %d over the limit" % size)
                self.max_size = size
                self._evict()
                continue
            else:                                           # 6.2.2 / 6.2.3
                idx, pos = decode_int(block, pos, 4)
                name = self._get(idx)[0] if idx else None
                if name is None:
                    name, pos = self._str(block, pos)
                value, pos = self._str(block, pos)
            seen_field = True
            total += len(name) + len(value) + ENTRY_OVERHEAD
            if total <= max_list:
                headers.append((name, value))
        return headers, total
