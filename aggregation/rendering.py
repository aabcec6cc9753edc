"""The response bytes of a batch: fresh metadata around the cached section bytes.

Sections are never serialized again here: their cached JSON (or deflate
segment, for a gzip response) is spliced into the envelope. A sparse
fieldset is the one exception, reduced per response so one cached body
serves every sparse variant.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from django.conf import settings

from .batch import BatchResult
from .encoding import deflate_segment, gzip_stitched
from .sparse import SectionFields, apply_fieldset

_SECTIONS_PLACEHOLDER = b'"\\u0000sections\\u0000"'
_INLINE_KEY = "\x00"  # stands where a bootstrap's sections go, then is cut out
_INLINE_MARK = b'"\\u0000":0,'


def sparse_etag(etag: str, paths: list[str]) -> str:
    """The ETag of a sparse fieldset of a body whose ETag is ``etag``."""
    digest = hashlib.blake2b(etag.encode(), digest_size=16)
    digest.update("\x00".join(paths).encode())
    return f'W/"{digest.hexdigest()}"'


def render_batch(
    result: BatchResult,
    *,
    extra: dict[str, Any] | None = None,
    gzip: bool = False,
    fieldset: dict[str, SectionFields] | None = None,
) -> bytes:
    """The response bytes around the cached sections (homepage or bootstrap layout)."""
    body = result.body
    sections_json, sections_deflate = body.sections_json, body.sections_deflate
    if fieldset:
        sections_json = orjson.dumps(apply_fieldset(orjson.loads(sections_json), fieldset))
        sections_deflate = deflate_segment(sections_json)
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
    if gzip:
        return gzip_stitched(prefix, sections_json, sections_deflate, suffix)
    return prefix + sections_json + suffix
