"""The cached body of an aggregate: its sections serialized, versioned and compressed once.

Every response wraps those bytes with fresh metadata (``rendering.py``), so a
cache hit runs no serializer and compresses only a few hundred bytes of
envelope. The sections are stored as *pieces*, one per section, each with
its version and its precompressed gzip and zstd forms (``delivery.py``), so
a response may replace any of them (``known=``, ``fields=``) and still reuse
the others' compressed bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from .compute import SectionResult
from .delivery import Layout as Layout  # re-exported: the batch names it from here
from .delivery import Pieces, pieces_of, serialized
from .errors import ErrorCode
from .snapshot import Snapshot

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
    # Per-section delivery (``delivery.py``). Builtin types only, and None on a
    # body stored by a release before them: the cache is shared across a
    # rolling deploy, and an unpickled body has exactly the fields it was
    # stored with (class defaults stand in for the others).
    section_versions: dict[str, str] | None = None
    body_version: str | None = None
    piece_bounds: tuple[int, ...] | None = None
    deflate_bounds: tuple[int, ...] | None = None
    sections_zstd: bytes | None = None
    zstd_bounds: tuple[int, ...] | None = None
    brotli_head: bytes | None = None
    head_crc: int | None = None  # CRC-32 of ENVELOPE_HEADS[layout] + sections_json

    @property
    def partial_failure(self) -> bool:
        """True when at least one section failed."""
        return bool(self.errors)

    @property
    def all_failed(self) -> bool:
        """True when every section failed: nothing worth sending or caching."""
        if not self.errors:  # a failed section always has its error: the usual answer, at once
            return False
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
    subject: str = "",
) -> BatchBody:
    """Serialize, version and compress the sections once; gather errors and expiry.

    With ``layout="inline"`` the cached bytes are the sections as members,
    without the enclosing braces. ``subject`` (the cache key: whose response
    this is) goes into every section's version, so a version from one
    subject's response never equals a section of another's.
    """
    errors = [r.error for r in results.values() if r.error is not None]
    pieces = pieces_of(
        {s: serialized(r.body, ok=r.status == "success") for s, r in results.items()},
        layout=layout,
        subject=subject,
        head=ENVELOPE_HEADS[layout],
    )
    sections_json = pieces.sections_json
    digest = hashlib.blake2b(sections_json, digest_size=16)
    digest.update(orjson.dumps(errors))
    expiries = [r.expires_at for r in results.values() if r.expires_at is not None]
    return BatchBody(
        sections_json=sections_json,
        etag=f'W/"{digest.hexdigest()}"',
        errors=errors,
        section_status={section_id: r.status for section_id, r in results.items()},
        extras=extras(results) if extras else {},
        expires_at=min(expiries) if expiries else None,
        layout=layout,
        snapshot=snapshot.as_metadata() if snapshot else None,
        **pieces.stored(),
    )


# What precedes the sections in a successful response, in each layout: the
# start of the Brotli stream stored with a body (``rendering.py`` checks it).
ENVELOPE_HEADS: dict[Layout, bytes] = {
    "sections": b'{"success":true,"data":{"sections":',
    "inline": b'{"success":true,"data":{',
}


def with_pieces(body: BatchBody, subject: str) -> BatchBody:
    """``body`` with its per-section delivery, rebuilt if it was stored without (older release).

    Costs what storing it would have (a serialization and compressions), once
    per response of such a body, until it expires (``CACHE_TTL`` at most).
    """
    if body.piece_bounds is not None:
        return body
    raw = body.sections_json if body.layout == "sections" else b"{" + body.sections_json + b"}"
    failed = {e.get("section") for e in body.errors}
    pieces: Pieces = pieces_of(
        {
            section_id: serialized(value, ok=section_id not in failed)
            for section_id, value in orjson.loads(raw).items()
        },
        layout=body.layout,
        subject=subject,
        head=ENVELOPE_HEADS[body.layout],
    )
    return replace(body, sections_json=pieces.sections_json, **pieces.stored())


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
