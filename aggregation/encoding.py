"""Compressed responses stitched from pieces compressed once, when a body is stored.

An aggregated body is a few large pieces (its sections) inside a small
envelope that changes with every response (``metadata``). Each piece is
compressed once, when the body is computed, and a response compresses only
what changed and joins the pieces, so a cache hit never recompresses a section:

- **gzip**: each piece is a raw deflate segment that ends on a byte boundary
  (a sync flush) and refers to nothing before it; segments concatenate, the
  CRC-32 runs over the uncompressed bytes, and one empty final block ends the
  member.
- **zstd**: each piece is a zstd frame; a zstd stream is one or more frames
  whose contents concatenate (RFC 8878 §3.1). The trap: ``zstandard.decompress``
  reads the first frame only; HTTP clients (curl, browsers, urllib3, httpx)
  stream every frame.
- **br**: Brotli streams cannot be joined, so the stored piece is the start of
  one stream (the envelope's constant head and every section), flushed to a
  byte boundary and not finished; a response appends its envelope's tail as
  uncompressed meta-blocks and the empty last meta-block (RFC 7932 §9.2). Only
  a whole body can be sent that way: a reduced one (``fields=``, ``known=``)
  is sent in another encoding the client takes (``STITCHED``), or, when Brotli
  is the only one, compressed for that response.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

import brotli
import zstandard

GZIP_LEVEL = 6
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no mtime
GZIP_END = b"\x03\x00"  # an empty final fixed-Huffman block
MIN_COMPRESS_LENGTH = 200  # as Django's GZipMiddleware: smaller bodies gain nothing
# What a response compresses itself (an envelope, a few replaced sections) is
# small: a 4 KiB window and memLevel 5 compress it as well as the defaults,
# four times faster (their 256 KiB of state costs more than the data).
_SMALL_WBITS = -12
_SMALL_MEM_LEVEL = 5
BROTLI_LAST = b"\x03"  # ISLAST=1, ISLASTEMPTY=1, padded to the byte
_BROTLI_BLOCK = 1 << 16  # an uncompressed meta-block of MNIBBLES=4 holds up to 64 KiB
BROTLI_REDUCED_QUALITY = 4  # a reduced body compressed per response: fast, still ~0.8x gzip
BROTLI_WINDOW = 22

IDENTITY = "identity"
ENCODINGS = ("br", "zstd", "gzip")
STITCHED = ("zstd", "gzip")  # encodings any body, reduced or whole, is stitched in
_CODING = re.compile(r"^\s*([A-Za-z0-9*._-]+)\s*(?:;\s*q\s*=\s*([^;\s]*))?\s*(?:;.*)?$")


def accepted_encodings(accept_encoding: str) -> dict[str, float]:
    """The codings of an ``Accept-Encoding`` header with their q-values (RFC 9110 §12.5.3).

    A malformed entry is ignored (as if not sent), an unparsable q-value is 0.
    """
    accepted: dict[str, float] = {}
    for entry in (accept_encoding or "").split(","):
        match = _CODING.match(entry)
        if match is None:
            continue
        coding, q = match.group(1).lower(), match.group(2)
        try:
            accepted[coding] = min(float(q), 1.0) if q is not None else 1.0
        except ValueError:
            accepted[coding] = 0.0
    return accepted


def choose_encoding(accept_encoding: str, offered: Sequence[str]) -> str:
    """The coding to send: the client's highest q-value among ``offered``, else identity.

    Ties go to the earlier of ``offered`` (the server's preference). ``*``
    stands for every coding the header does not name; ``q=0`` refuses one.
    An absent or empty header, or one naming nothing offered, means identity.
    """
    # Clients send a handful of distinct headers: remember the usual ones.
    if len(accept_encoding) <= _REMEMBERED_HEADER_LENGTH:
        return _remembered_choice(accept_encoding, tuple(offered))
    return _choose(accept_encoding, offered)


_REMEMBERED_HEADER_LENGTH = 200


@lru_cache(maxsize=256)
def _remembered_choice(accept_encoding: str, offered: tuple[str, ...]) -> str:
    return _choose(accept_encoding, offered)


def _choose(accept_encoding: str, offered: Sequence[str]) -> str:
    accepted = accepted_encodings(accept_encoding)
    wildcard = accepted.get("*", 0.0)
    best, best_q = IDENTITY, 0.0
    for coding in offered:
        q = accepted.get(coding, wildcard)
        if q > best_q:
            best, best_q = coding, q
    return best


def deflate_segment(data: bytes) -> bytes:
    """A self-contained raw deflate segment of ``data``, not final, byte-aligned."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _small_deflate_segment(data: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _SMALL_WBITS, _SMALL_MEM_LEVEL)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


@lru_cache(maxsize=8)
def _head_segment(head: bytes) -> bytes:
    """The deflate segment of an envelope's constant head (a few of them exist)."""
    return _small_deflate_segment(head)


@lru_cache(maxsize=8)
def _head_frame(head: bytes, level: int) -> bytes:
    """The zstd frame of an envelope's constant head."""
    return zstd_frame(head, level)


def zstd_frame(data: bytes, level: int) -> bytes:
    """One zstd frame of ``data`` (content size written, no checksum)."""
    return zstandard.ZstdCompressor(level=level).compress(data)


# A run is a stretch of the response: its bytes, and their compressed piece
# when that was made once, in advance (None: compress it for this response).
Run = tuple[bytes, bytes | None]


def gzip_stitched(runs: Iterable[Run]) -> bytes:
    """One gzip member of the runs' bytes, reusing every precompressed segment."""
    parts, crc, size = [GZIP_HEADER], 0, 0
    for raw, segment in runs:
        if not raw:
            continue
        parts.append(segment if segment is not None else _small_deflate_segment(raw))
        crc = zlib.crc32(raw, crc)
        size += len(raw)
    parts.append(GZIP_END)
    parts.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(parts)


def gzip_around(head: bytes, stored: bytes, crc: int, size: int, tail: bytes) -> bytes:
    """One gzip member of a whole body: a constant ``head``, its sections, then ``tail``.

    ``stored`` is every section's segment, ``crc`` and ``size`` are the
    CRC-32 and length of ``head`` and the sections (kept with the body), so a
    response compresses and checksums only its ``tail``.
    """
    trailer = struct.pack("<II", zlib.crc32(tail, crc), (size + len(tail)) & 0xFFFFFFFF)
    return b"".join(
        (GZIP_HEADER, _head_segment(head), stored, _small_deflate_segment(tail), GZIP_END, trailer)
    )


def zstd_around(head: bytes, stored: bytes, tail: bytes, level: int) -> bytes:
    """The zstd frames of a whole body: a constant ``head``, its sections' frames, ``tail``."""
    return b"".join((_head_frame(head, level), stored, zstd_frame(tail, level)))


def zstd_stitched(runs: Iterable[Run], level: int) -> bytes:
    """Concatenated zstd frames of the runs' bytes, reusing every precompressed frame."""
    compressor: zstandard.ZstdCompressor | None = None
    parts = []
    for raw, frame in runs:
        if not raw:
            continue
        if frame is None:
            compressor = compressor or zstandard.ZstdCompressor(level=level)
            frame = compressor.compress(raw)
        parts.append(frame)
    return b"".join(parts)


def brotli_head(data: bytes, quality: int) -> bytes:
    """The start of a Brotli stream of ``data``: flushed to a byte boundary, not finished."""
    compressor = brotli.Compressor(quality=quality, lgwin=BROTLI_WINDOW)
    return compressor.process(data) + compressor.flush()


def brotli_finished(head: bytes, tail: bytes) -> bytes:
    """``head`` (from ``brotli_head``) continued with ``tail`` uncompressed, and ended.

    Each uncompressed meta-block: ISLAST=0, MNIBBLES=4 (code 0), MLEN-1 in 16
    bits, ISUNCOMPRESSED=1, padded to the byte (20 bits, so 3 bytes), then the
    bytes themselves.
    """
    parts = [head]
    for start in range(0, len(tail), _BROTLI_BLOCK):
        chunk = tail[start : start + _BROTLI_BLOCK]
        header = ((len(chunk) - 1) << 3) | (1 << 19)
        parts.append(header.to_bytes(3, "little"))
        parts.append(chunk)
    parts.append(BROTLI_LAST)
    return b"".join(parts)


def brotli_whole(data: bytes, quality: int = BROTLI_REDUCED_QUALITY) -> bytes:
    """A Brotli stream of ``data`` compressed for this response (a reduced body)."""
    return bytes(brotli.compress(data, quality=quality, lgwin=BROTLI_WINDOW))
