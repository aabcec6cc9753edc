"""Section-level delivery: each section's version, ``known=``, and the pieces a response is made of.

A stored body keeps its sections as *pieces*, one per section: the section's
JSON with the punctuation around it (``{"overview":...`` then
``,"sessions":...``), so that the pieces, joined, are the sections' JSON, and
each has its own precompressed gzip segment and zstd frame (``encoding.py``).

A section's **version** is a content hash: of the subject (the cache key,
so whose response it is), the section's id, whether it succeeded, and its
serialized content. It changes exactly when the section's content does, and
never with the moment it was computed (the envelope's ``metadata``, a
section's ``lastUpdated``: a section recomputed to the same content keeps its
version). The same content of two subjects has two versions, so a version
from one user's response never matches another's.

``known=sessions:<version>,...`` names the versions a client holds; each
section whose version still matches is replaced, for that response only, by
``{"id": ..., "notModified": true, "version": ...}``. Since a version names
exact content, the client's merged copy is the body served (but for the
``lastUpdated`` of what it kept), however old its pieces are: one snapshot,
whatever it combined.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson
from django.conf import settings

from .encoding import brotli_head, deflate_segment, zstd_frame
from .sections import SectionRegistry
from .sparse import SectionFields, apply_fieldset

# "sections": ``data.sections = {...}`` (homepage); "inline": each section a member of ``data``.
Layout = Literal["sections", "inline"]

VERSION_BYTES = 12  # 96 bits: 16 characters in base64url
MAX_KNOWN_ITEMS = 50
_VERSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BRACES: dict[str, tuple[bytes, bytes]] = {"sections": (b"{", b"}"), "inline": (b"", b"")}
_COMPUTED_AT = "lastUpdated"  # when a section object was computed: not its content


class Serialized(NamedTuple):
    """One section as stored: its JSON, whether it succeeded, and the JSON its version is of."""

    value: bytes
    ok: bool
    content: bytes


def serialized(value: Any, *, ok: bool) -> Serialized:
    """``value`` serialized, and its content (without ``lastUpdated``) for its version."""
    raw = orjson.dumps(value)
    if isinstance(value, dict) and _COMPUTED_AT in value:
        content = orjson.dumps({k: v for k, v in value.items() if k != _COMPUTED_AT})
        return Serialized(raw, ok, content)
    return Serialized(raw, ok, raw)


def section_version(subject: str, section_id: str, content: bytes, *, ok: bool) -> str:
    """The version of one section's serialized ``content`` in ``subject``'s response."""
    digest = hashlib.blake2b(digest_size=VERSION_BYTES)
    for part in (subject.encode(), section_id.encode(), b"ok" if ok else b"failed"):
        digest.update(part)
        digest.update(b"\x00")
    digest.update(content)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def body_version(versions: Iterable[str]) -> str:
    """The version of a whole set of sections: equal exactly when every section's is."""
    digest = hashlib.blake2b("\x00".join(versions).encode(), digest_size=VERSION_BYTES)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _framing(layout: str, index: int, count: int, section_id: str) -> tuple[bytes, bytes]:
    """What comes before and after section ``index``'s value in its piece."""
    opening, closing = _BRACES[layout]
    lead = (opening if index == 0 else b",") + orjson.dumps(section_id) + b":"
    return lead, closing if index == count - 1 else b""


def _bounds(parts: list[bytes]) -> tuple[int, ...]:
    bounds = [0]
    for part in parts:
        bounds.append(bounds[-1] + len(part))
    return tuple(bounds)


@dataclass
class Pieces:
    """A body's sections as pieces, versioned and compressed (what ``BatchBody`` stores)."""

    sections_json: bytes
    sections_deflate: bytes
    piece_bounds: tuple[int, ...]
    deflate_bounds: tuple[int, ...]
    section_versions: dict[str, str]
    body_version: str
    sections_zstd: bytes | None
    zstd_bounds: tuple[int, ...] | None
    brotli_head: bytes | None
    head_crc: int

    def stored(self) -> dict[str, Any]:
        """The ``BatchBody`` fields these pieces fill (all but ``sections_json``)."""
        return {
            "head_crc": self.head_crc,
            "sections_deflate": self.sections_deflate,
            "piece_bounds": self.piece_bounds,
            "deflate_bounds": self.deflate_bounds,
            "section_versions": self.section_versions,
            "body_version": self.body_version,
            "sections_zstd": self.sections_zstd,
            "zstd_bounds": self.zstd_bounds,
            "brotli_head": self.brotli_head,
        }


def pieces_of(
    sections: dict[str, Serialized], *, layout: Layout, subject: str, head: bytes
) -> Pieces:
    """Pieces of ``sections``, in order.

    Compressed in each of ``RESPONSE_ENCODINGS`` (gzip always: a body stored
    by this release is read by the one before it during a rolling deploy).
    The Brotli stream starts with ``head``, the envelope before the sections.
    """
    ids = list(sections)
    parts = []
    for index, section_id in enumerate(ids):
        lead, trail = _framing(layout, index, len(ids), section_id)
        parts.append(lead + sections[section_id].value + trail)
    if not parts:
        parts = [b"".join(_BRACES[layout])]
    sections_json = b"".join(parts)
    deflated = [deflate_segment(p) for p in parts]
    encodings = settings.RESPONSE_ENCODINGS
    frames = (
        [zstd_frame(p, settings.RESPONSE_ZSTD_LEVEL) for p in parts]
        if "zstd" in encodings
        else None
    )
    versions = {
        section_id: section_version(subject, section_id, s.content, ok=s.ok)
        for section_id, s in sections.items()
    }
    return Pieces(
        sections_json=sections_json,
        sections_deflate=b"".join(deflated),
        piece_bounds=_bounds(parts),
        deflate_bounds=_bounds(deflated),
        section_versions=versions,
        body_version=body_version(versions.values()),
        sections_zstd=b"".join(frames) if frames is not None else None,
        zstd_bounds=_bounds(frames) if frames is not None else None,
        brotli_head=brotli_head(head + sections_json, settings.RESPONSE_BROTLI_QUALITY)
        if "br" in encodings
        else None,
        head_crc=zlib.crc32(sections_json, zlib.crc32(head)),
    )


class InvalidKnown(ValueError):
    """A ``known=`` item is not ``<section>:<version>`` of a section of this endpoint."""


def parse_known(raw: list[str], registry: SectionRegistry) -> dict[str, str]:
    """``["sessions:abc", ...]`` as ``{canonical section id: version}``.

    Raises ``InvalidKnown`` naming the first bad item: no ``:``, an unknown
    section, a version that is not 1-64 of ``A-Z a-z 0-9 _ -``, a section
    named twice, more than ``MAX_KNOWN_ITEMS`` items. A well-formed version
    the section never had is not an error: the section is simply sent whole.
    """
    if len(raw) > MAX_KNOWN_ITEMS:
        raise InvalidKnown(f"At most {MAX_KNOWN_ITEMS} items.")
    known: dict[str, str] = {}
    for item in raw:
        name, colon, version = item.partition(":")
        if not colon:
            raise InvalidKnown(f"'{item}': expected <section>:<version>.")
        section_id = registry.canonical(name)
        if section_id is None:
            raise InvalidKnown(
                f"'{item}': unknown section '{name.strip()}' (one of: {', '.join(registry.ids)})."
            )
        if not _VERSION.fullmatch(version.strip()):
            raise InvalidKnown(f"'{item}': a version is 1-64 letters, digits, '_' or '-'.")
        if section_id in known:
            raise InvalidKnown(f"'{item}': section '{section_id}' is named twice.")
        known[section_id] = version.strip()
    return known


def not_modified(section_id: str, version: str) -> bytes:
    """What stands in for a section the client already holds."""
    return orjson.dumps({"id": section_id, "notModified": True, "version": version})


# A stretch of a response's sections: its bytes, and the index of the stored
# piece they are (None: made for this response, so compressed for it too).
Stretch = tuple[bytes, int | None]


def stretches(
    *,
    sections_json: bytes,
    piece_bounds: tuple[int, ...],
    versions: dict[str, str],
    layout: str,
    fieldset: dict[str, SectionFields] | None = None,
    known: dict[str, str] | None = None,
) -> tuple[list[Stretch], list[str]]:
    """The sections of one response, and the ids of those sent as ``notModified``.

    A section whose version ``known`` names is a ``notModified`` stand-in; one
    ``fieldset`` names is reduced (parsed and serialized again, alone); every
    other is its stored piece, untouched.
    """
    ids = list(versions)
    if not ids:
        return [(sections_json, 0)], []
    out: list[Stretch] = []
    unchanged: list[str] = []
    for index, section_id in enumerate(ids):
        start, end = piece_bounds[index], piece_bounds[index + 1]
        version = versions[section_id]
        if known is not None and known.get(section_id) == version:
            lead, trail = _framing(layout, index, len(ids), section_id)
            unchanged.append(section_id)
            out.append((lead + not_modified(section_id, version) + trail, None))
        elif fieldset is not None and section_id in fieldset:
            lead, trail = _framing(layout, index, len(ids), section_id)
            value = orjson.loads(sections_json[start + len(lead) : end - len(trail)])
            reduced = apply_fieldset({section_id: value}, fieldset)[section_id]
            out.append((lead + orjson.dumps(reduced) + trail, None))
        else:
            out.append((sections_json[start:end], index))
    return out, unchanged
