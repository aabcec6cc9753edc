"""The cached body of an aggregate: its sections serialized, and deflated, once.

Every response wraps those bytes with fresh metadata (``rendering.py``), so a
cache hit runs no serializer and compresses only a few hundred bytes of
envelope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from .compute import SectionResult
from .encoding import deflate_segment
from .errors import ErrorCode
from .snapshot import Snapshot

# "sections": ``data.sections = {...}`` (homepage); "inline": each section a member of ``data``.
Layout = Literal["sections", "inline"]

# What a batch adds beside its sections, from their results (analytics, an owner).
Extras = Callable[[dict[str, SectionResult]], dict[str, Any]]

_UNAVAILABLE_CODES = {ErrorCode.DB_CONNECTION_ERROR, ErrorCode.TIMEOUT_ERROR}


@dataclass
class BatchBody:
    """A computed aggregate as cached: serialized sections plus what the envelope needs."""

    sections_json: bytes
    sections_deflate: bytes
    etag: str
    errors: list[dict[str, str]]
    section_status: dict[str, str]
    extras: dict[str, Any] = field(default_factory=dict)
    expires_at: float | None = None
    layout: Layout = "sections"
    snapshot: dict[str, str | None] | None = None

    @property
    def partial_failure(self) -> bool:
        """True when at least one section failed."""
        return bool(self.errors)

    @property
    def all_failed(self) -> bool:
        """True when every section failed: nothing worth sending or caching."""
        return bool(self.section_status) and all(
            s != "success" for s in self.section_status.values()
        )

    @property
    def unavailable(self) -> bool:
        """Every section failed for want of the database (down or too slow)."""
        return self.all_failed and all(e["code"] in _UNAVAILABLE_CODES for e in self.errors)


def assemble(
    results: dict[str, SectionResult],
    *,
    extras: Extras | None = None,
    layout: Layout = "sections",
    snapshot: Snapshot | None = None,
) -> BatchBody:
    """Serialize (and deflate) the sections once; gather errors and expiry.

    With ``layout="inline"`` the cached bytes are the sections as members,
    without the enclosing braces.
    """
    sections = {section_id: r.body for section_id, r in results.items()}
    errors = [r.error for r in results.values() if r.error is not None]
    sections_json = orjson.dumps(sections)
    if layout == "inline":
        sections_json = sections_json[1:-1]
    digest = hashlib.blake2b(sections_json, digest_size=16)
    digest.update(orjson.dumps(errors))
    expiries = [r.expires_at for r in results.values() if r.expires_at is not None]
    return BatchBody(
        sections_json=sections_json,
        sections_deflate=deflate_segment(sections_json),
        etag=f'W/"{digest.hexdigest()}"',
        errors=errors,
        section_status={section_id: r.status for section_id, r in results.items()},
        extras=extras(results) if extras else {},
        expires_at=min(expiries) if expiries else None,
        layout=layout,
        snapshot=snapshot.as_metadata() if snapshot else None,
    )


def batch_view(body: BatchBody) -> dict[str, Any]:
    """What a client sees of a body, minus the moment it was computed (``lastUpdated``)."""
    raw = body.sections_json if body.layout == "sections" else b"{" + body.sections_json + b"}"
    sections = {
        section_id: {k: v for k, v in section.items() if k != "lastUpdated"}
        if isinstance(section, dict)
        else section
        for section_id, section in orjson.loads(raw).items()
    }
    return {"sections": sections, "errors": body.errors}
