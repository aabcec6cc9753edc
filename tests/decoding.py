"""Decode a response body in whatever content coding it came in, as a client would."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import orjson
import zstandard


def decompressed(content: bytes, coding: str | None) -> bytes:
    """``content`` decoded from ``coding`` (None or identity: as is).

    zstd is read across every frame, as HTTP clients do (``zstandard.decompress``
    stops after the first).
    """
    if coding == "gzip":
        return gzip.decompress(content)
    if coding == "br":
        return brotli.decompress(content)
    if coding == "zstd":
        reader = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        return reader.decompress(content)
    assert coding in (None, "identity"), coding
    return content


def decoded(response: Any) -> Any:
    """A Django test response's JSON body, decoded from its ``Content-Encoding``."""
    return orjson.loads(decompressed(response.content, response.get("Content-Encoding")))
