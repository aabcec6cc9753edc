"""The response bytes of a batch: fresh metadata around the cached section pieces.

Sections are never serialized again here: their stored pieces (JSON, and
compressed in each encoding) are spliced into the envelope. Two things are
made per response, and only for the sections they touch: a ``notModified``
stand-in for a section the client holds (``known=``), and a section reduced
to a sparse fieldset (``fields=``). One cached body serves every variant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from .assembly import ENVELOPE_HEADS, BatchBody
from .batch import BatchResult
from .delivery import Stretch, stretches
from .encoding import (
    IDENTITY,
    MIN_COMPRESS_LENGTH,
    STITCHED,
    Run,
    brotli_finished,
    brotli_whole,
    choose_encoding,
    gzip_around,
    gzip_stitched,
    zstd_around,
    zstd_stitched,
)
from .sparse import SectionFields

_SECTIONS_PLACEHOLDER = b'"\\u0000sections\\u0000"'
_INLINE_KEY = "\x00"  # stands where a bootstrap's sections go, then is cut out
_INLINE_MARK = b'"\\u0000":0,'


def sparse_etag(etag: str, paths: list[str]) -> str:
    """The ETag of a variant (``paths``: its fieldset, its sections not sent) of a body."""
    digest = hashlib.blake2b(etag.encode(), digest_size=16)
    digest.update("\x00".join(paths).encode())
    return f'W/"{digest.hexdigest()}"'


@dataclass
class Rendered:
    """A response body and the content coding it is in (``identity``: none)."""

    content: bytes
    encoding: str = IDENTITY
    not_modified: list[str] = field(default_factory=list)


def offered_encodings(*, reduced: bool) -> tuple[str, ...]:
    """The codings a body may be sent in, best first (``RESPONSE_ENCODINGS``).

    A reduced body prefers the codings it can be stitched in from stored
    pieces: Brotli would have to compress it for this response.
    """
    configured = tuple(settings.RESPONSE_ENCODINGS)
    if not reduced:
        return configured
    return tuple(e for e in configured if e in STITCHED) + tuple(
        e for e in configured if e not in STITCHED
    )


def render_batch(
    result: BatchResult,
    *,
    extra: dict[str, Any] | None = None,
    accept_encoding: str = "",
    fieldset: dict[str, SectionFields] | None = None,
    known: dict[str, str] | None = None,
) -> Rendered:
    """The response bytes around the cached sections, in the best coding the client takes.

    ``result.body`` must have its pieces (``assembly.with_pieces``).
    """
    body = result.body
    if body.piece_bounds is None or body.section_versions is None:
        raise ValueError("A body without pieces: pass it through with_pieces first.")
    parts: list[Stretch] | None = None  # None: the stored sections, whole
    unchanged: list[str] = []
    if fieldset or known:  # most responses send the body whole and walk no piece
        parts, unchanged = _stretches(body, fieldset, known)
        if all(index is not None for _, index in parts):
            parts = None
    prefix, suffix = _envelope(result, extra)
    sections_length = len(body.sections_json) if parts is None else sum(len(r) for r, _ in parts)
    encoding = (
        choose_encoding(accept_encoding, offered_encodings(reduced=parts is not None))
        if len(prefix) + sections_length + len(suffix) >= MIN_COMPRESS_LENGTH
        else IDENTITY
    )
    return Rendered(_encode(body, encoding, prefix, parts, suffix), encoding, unchanged)


def _stretches(
    body: BatchBody,
    fieldset: dict[str, SectionFields] | None = None,
    known: dict[str, str] | None = None,
) -> tuple[list[Stretch], list[str]]:
    """The body's sections as ``delivery.stretches`` (its pieces checked by ``render_batch``)."""
    assert body.piece_bounds is not None and body.section_versions is not None  # noqa: S101
    return stretches(
        sections_json=body.sections_json,
        piece_bounds=body.piece_bounds,
        versions=body.section_versions,
        layout=body.layout,
        fieldset=fieldset,
        known=known,
    )


def _envelope(result: BatchResult, extra: dict[str, Any] | None) -> tuple[bytes, bytes]:
    """The envelope's bytes before and after the sections."""
    body = result.body
    data: dict[str, Any] = {}
    if body.layout == "inline":
        data[_INLINE_KEY] = 0
    else:
        data["sections"] = orjson.Fragment(_SECTIONS_PLACEHOLDER)
    data["metadata"] = result.metadata()
    if extra:
        data.update(extra)
    envelope: dict[str, Any] = {"success": not body.all_failed, "data": data}
    if body.errors:
        envelope["errors"] = body.errors
        if body.all_failed:
            envelope["message"] = "Every section failed."
    envelope["version"] = settings.API_VERSION
    mark = _INLINE_MARK if body.layout == "inline" else _SECTIONS_PLACEHOLDER
    prefix, suffix = orjson.dumps(envelope).split(mark, 1)
    if body.layout == "inline":
        suffix = b"," + suffix
    return prefix, suffix


def _encode(
    body: BatchBody, encoding: str, prefix: bytes, parts: list[Stretch] | None, suffix: bytes
) -> bytes:
    """The response in ``encoding``: ``parts`` (None: the stored sections, whole) enveloped."""
    # A whole body behind its usual head: every section's stored bytes in one.
    whole = parts is None and prefix == ENVELOPE_HEADS[body.layout]
    if encoding == "gzip":
        if whole and body.head_crc is not None:
            size = len(prefix) + len(body.sections_json)
            return gzip_around(prefix, body.sections_deflate, body.head_crc, size, suffix)
        runs = _runs(
            prefix, parts or _stretches(body)[0], suffix, body.deflate_bounds, body.sections_deflate
        )
        return gzip_stitched(runs)
    if encoding == "zstd":
        if whole and body.sections_zstd is not None:
            return zstd_around(prefix, body.sections_zstd, suffix, settings.RESPONSE_ZSTD_LEVEL)
        runs = _runs(
            prefix, parts or _stretches(body)[0], suffix, body.zstd_bounds, body.sections_zstd
        )
        return zstd_stitched(runs, settings.RESPONSE_ZSTD_LEVEL)
    if parts is None:
        plain = b"".join((prefix, body.sections_json, suffix))
    else:
        plain = b"".join((prefix, *(raw for raw, _ in parts), suffix))
    if encoding == "br":
        if whole and body.brotli_head is not None:
            return brotli_finished(body.brotli_head, suffix)
        return brotli_whole(plain)
    return plain


def _runs(
    prefix: bytes,
    parts: list[Stretch],
    suffix: bytes,
    bounds: tuple[int, ...] | None,
    stored: bytes | None,
) -> Iterable[Run]:
    """The response as runs for a stitching coder: stored pieces reused, the rest merged.

    Without stored pieces in this coding (a body stored while it was not in
    ``RESPONSE_ENCODINGS``), every run is compressed for this response.
    """
    pending = [prefix]
    for raw, index in parts:
        if index is None or bounds is None or stored is None:
            pending.append(raw)
            continue
        yield b"".join(pending), None
        pending = []
        yield raw, stored[bounds[index] : bounds[index + 1]]
    pending.append(suffix)
    yield b"".join(pending), None
