"""gzip responses stitched from pre-compressed pieces.

The sections of an aggregated response are compressed once, when computed, as a
raw deflate segment that ends on a byte boundary (a sync flush) and refers to
nothing before it. Each response compresses only its small, changing envelope
and joins the pieces into one valid gzip member: deflate segments concatenate,
and the CRC-32 runs over the uncompressed bytes.
"""

from __future__ import annotations

import re
import struct
import zlib

GZIP_LEVEL = 6
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no mtime
MIN_COMPRESS_LENGTH = 200  # as Django's GZipMiddleware: smaller bodies gain nothing
_ACCEPTS_GZIP = re.compile(r"\bgzip\b")


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client's ``Accept-Encoding`` allows gzip."""
    return bool(_ACCEPTS_GZIP.search(accept_encoding or ""))


def deflate_segment(data: bytes) -> bytes:
    """A self-contained raw deflate segment of ``data``, not final, byte-aligned."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def gzip_stitched(prefix: bytes, middle: bytes, middle_segment: bytes, suffix: bytes) -> bytes:
    """Gzip of ``prefix + middle + suffix`` given ``middle`` already deflated."""
    head = deflate_segment(prefix)
    tail = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    tail_bytes = tail.compress(suffix) + tail.flush(zlib.Z_FINISH)
    crc = zlib.crc32(suffix, zlib.crc32(middle, zlib.crc32(prefix)))
    size = (len(prefix) + len(middle) + len(suffix)) & 0xFFFFFFFF
    return b"".join((GZIP_HEADER, head, middle_segment, tail_bytes, struct.pack("<II", crc, size)))
