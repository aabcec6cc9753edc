"""Delta delivery: a response compressed against the copy the client already holds.

Compression Dictionary Transport (RFC 9842) with ``dcz`` (Zstandard):

1. A whole response names itself a dictionary for later requests to the same
   path (``Use-As-Dictionary: match="...", id="..."``). The id says how to make
   that response's exact bytes again: which body it was rendered from (a
   digest of its exact sections, ``held_version``) and the metadata that was
   its own (its time, ``fromCache``...). Sent to a client that takes ``dcz``,
   the body is kept in the shared cache under that digest, within the
   subject's cache key, for ``DELTA_DICTIONARY_TTL_S`` (once per body per
   process; in the request's deferred writes). Only bodies some client may
   hold are kept, and a recomputed body is kept beside, never over, another.
2. A client that kept it sends ``Available-Dictionary`` (the SHA-256 of those
   bytes), ``Dictionary-ID`` and ``dcz`` in ``Accept-Encoding``. The kept body
   is read in the round trip that reads the response's own entry.
3. The server makes the held bytes again from the kept body and the id, and
   sends ``dcz`` only if their SHA-256 is the one the client named: a 40-byte
   header (a skippable zstd frame carrying that hash) and one zstd frame
   compressed with them as a raw-content dictionary. Anything else (no kept
   body, a malformed or forged id, another hash, Redis down, a kept body that
   cannot be read) is sent as it would have been without the headers.

After one profile change, a trainer's whole bootstrap of 200 sessions comes
back in about 150 bytes against 5 KB gzipped. The client must keep the bytes
it received (decoded), not a re-serialization of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
import zstandard
from cachetools import LRUCache, TTLCache
from django.conf import settings

from caching.keys import beside
from caching.process import register_state
from caching.shared import SharedCacheUnavailable, shared_cache

from .assembly import BatchBody
from .encoding import accepted_encodings

DCZ = "dcz"
# A skippable frame (magic 0x184D2A5E, 32 bytes long) holding the dictionary's SHA-256.
DCZ_HEADER = b"\x5e\x2a\x4d\x18\x20\x00\x00\x00"
DCZ_LEVEL = 3
_DIGEST = re.compile(r"^\s*:([A-Za-z0-9+/]{43})=?:\s*$")  # an sf-binary of 32 bytes
_ID = re.compile(r'^\s*"([A-Za-z0-9_.-]{1,1000})"\s*$')  # an sf-string, as this server writes it
_VERSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a held_version
# The metadata a response had of its own, and the types it had them in.
_MOMENT_TYPES: dict[str, tuple[type, ...]] = {
    "timestamp": (str,),
    "ttl": (int,),
    "fromCache": (bool,),
    "stale": (bool,),
    "executionTime": (int, float),
}


@dataclass(frozen=True)
class Held:
    """The dictionary a client says it holds: its SHA-256, and what the id says it was."""

    digest: bytes
    version: str  # the held_version of the body the response was rendered from
    moment: dict[str, Any]


def takes_dcz(accept_encoding: str) -> bool:
    """True when ``Accept-Encoding`` takes ``dcz`` (named, with a q-value above 0)."""
    return accepted_encodings(accept_encoding).get(DCZ, 0.0) > 0


def held_dictionary(meta: dict[str, Any]) -> Held | None:
    """What the request's headers say the client holds, if it takes ``dcz`` and names one."""
    digest_header = meta.get("HTTP_AVAILABLE_DICTIONARY")
    id_header = meta.get("HTTP_DICTIONARY_ID")
    if not digest_header or not id_header:
        return None
    if not takes_dcz(meta.get("HTTP_ACCEPT_ENCODING", "")):
        return None
    digest, ident = _DIGEST.match(digest_header), _ID.match(id_header)
    if digest is None or ident is None:
        return None
    parsed = _parse_id(ident.group(1))
    if parsed is None:
        return None
    return Held(base64.b64decode(digest.group(1) + "="), *parsed)


def dictionary_id(version: str, moment: dict[str, Any]) -> str:
    """The id a response is named by as a dictionary: its body's held_version, its own metadata."""
    packed = base64.urlsafe_b64encode(orjson.dumps(moment)).rstrip(b"=").decode()
    return f"{version}.{packed}"


def _parse_id(ident: str) -> tuple[str, dict[str, Any]] | None:
    version, _, packed = ident.partition(".")
    if not _VERSION.match(version):
        return None
    try:
        moment = orjson.loads(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(moment, dict) or not set(_MOMENT_TYPES) <= moment.keys() <= {
        *_MOMENT_TYPES,
        "userId",
    }:
        return None
    for key, types in _MOMENT_TYPES.items():
        value = moment[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            return None
    if not isinstance(moment.get("userId", ""), str):
        return None
    return version, moment


def held_version(body: BatchBody) -> str:
    """A digest of exactly what a body renders: its sections' bytes (its ETag) and snapshot.

    Not ``body_version``: that one leaves out each section's ``lastUpdated``,
    so two computations of the same content share it but not their bytes.
    """
    digest = hashlib.blake2b(body.etag.encode(), digest_size=12)
    digest.update(orjson.dumps(body.snapshot))
    return base64.urlsafe_b64encode(digest.digest()).decode()


def dictionary_key(cache_key: str, version: str) -> str:
    """Where the body behind ``cache_key`` of ``held_version`` is kept (in the entry's shard)."""
    return beside(f"dictionary:{cache_key}:{version}", cache_key)


_lock = threading.Lock()  # for _kept and _made
# Bodies this process has kept lately: written once a minute at most, not per
# response, and again after Redis comes back (or is flushed: within the minute).
_kept: TTLCache = TTLCache(maxsize=1024, ttl=60)


def keep(cache_key: str, body: BatchBody) -> None:
    """Keep ``body`` for ``DELTA_DICTIONARY_TTL_S``, once per process (in deferred writes)."""
    key = dictionary_key(cache_key, held_version(body))
    with _lock:
        if key in _kept:
            return
        _kept[key] = True
    try:
        shared_cache.set(key, retained(body), settings.DELTA_DICTIONARY_TTL_S)
    except SharedCacheUnavailable:  # then no dcz against it: no harm, try again next time
        with _lock:
            _kept.pop(key, None)


def retained(body: BatchBody) -> BatchBody:
    """What is kept of a body to make its responses again: no compressed forms but zstd's.

    The sections are kept as their zstd frames when there are some (a tenth of
    the JSON); ``restored`` turns them back.
    """
    if body.sections_zstd is not None:
        return replace(body, sections_json=b"", sections_deflate=b"", brotli_head=None)
    return replace(body, sections_deflate=b"", sections_zstd=None, brotli_head=None)


def restored(kept: BatchBody) -> BatchBody:
    """A kept body with its sections' JSON back."""
    if kept.sections_json or kept.sections_zstd is None:
        return kept
    reader = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    return replace(kept, sections_json=reader.decompress(kept.sections_zstd))


@dataclass
class _Made:
    """A held response made again: its bytes, their SHA-256, and once matched, the dictionary."""

    content: bytes
    digest: bytes
    dictionary: zstandard.ZstdCompressionDict | None = None


# Held responses made again in this process, by (cache key, id). Few: each
# client holds its own (its id has its response's time), so only a client
# asking again soon finds its own here. A dictionary is precomputed for its
# level: on a 100 KB bootstrap that costs what one compression by value does
# (~120 us) and makes every later one 4x faster, for ~600 KB of tables.
_made: LRUCache = LRUCache(maxsize=16)


def compressor_for(
    held_key: tuple[str, str], digest: bytes, make: Callable[[], bytes]
) -> zstandard.ZstdCompressor | None:
    """A compressor with the held bytes as its dictionary, if ``make()`` gives bytes of ``digest``.

    ``make`` renders the held response again; its hash is remembered for
    ``held_key`` whatever was asked, so a request naming a wrong hash first
    does not spoil the id for the client that holds the right one.
    """
    with _lock:
        made = _made.get(held_key)
    if made is None:
        content = make()
        made = _Made(content, hashlib.sha256(content).digest())
        with _lock:
            _made[held_key] = made
    if made.digest != digest:
        return None
    if made.dictionary is None:
        raw = zstandard.ZstdCompressionDict(made.content, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        raw.precompute_compress(level=DCZ_LEVEL)
        made.dictionary = raw
    return zstandard.ZstdCompressor(
        level=DCZ_LEVEL, dict_data=made.dictionary, write_content_size=True
    )


def forget() -> None:
    """Forget the bodies kept and the dictionaries made by this process (tests)."""
    with _lock:
        _made.clear()
        _kept.clear()


register_state("delta delivery: dictionaries made, bodies kept", forget)
shared_cache.on_recovery(forget)


def dcz(content: bytes, digest: bytes, compressor: zstandard.ZstdCompressor) -> bytes:
    """``content`` as a ``dcz`` body against the dictionary of ``digest``."""
    return DCZ_HEADER + digest + compressor.compress(content)
