"""Section versions, ``known=``, and a body's pieces (``aggregation/delivery.py``, ``assembly.py``)."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from aggregation.assembly import assemble, with_pieces
from aggregation.batch import BatchResult
from aggregation.compute import SectionResult
from aggregation.delivery import InvalidKnown, parse_known, section_version, serialized, stretches
from aggregation.rendering import render_batch
from aggregation.sections import Section, SectionPayload, SectionRegistry
from caching.engine import CacheResult
from tests.decoding import decompressed


def _section(section_id: str) -> Section:
    return Section(id=section_id, title=section_id, type="t", fetch=lambda c: SectionPayload(),
                   aliases=(f"{section_id}_alias",))  # fmt: skip


REGISTRY = SectionRegistry([_section("overview"), _section("sessions")])


def _result(body, status="success"):
    return SectionResult(body=body, status=status, stats={}, expires_at=None)


def test_a_version_is_of_the_content_the_subject_and_the_outcome():
    value = serialized({"id": "x", "items": [1], "lastUpdated": "2026-01-01T00:00:00Z"}, ok=True)
    later = serialized({"id": "x", "items": [1], "lastUpdated": "2026-01-02T00:00:00Z"}, ok=True)
    assert value.value != later.value and value.content == later.content
    version = section_version("trainer:bootstrap:1", "x", value.content, ok=True)
    assert version == section_version("trainer:bootstrap:1", "x", later.content, ok=True)
    assert len(version) == 16
    assert version != section_version("trainer:bootstrap:2", "x", value.content, ok=True)
    assert version != section_version("trainer:bootstrap:1", "y", value.content, ok=True)
    assert version != section_version("trainer:bootstrap:1", "x", value.content, ok=False)
    assert version != section_version(
        "trainer:bootstrap:1", "x", b'{"id":"x","items":[2]}', ok=True
    )


def test_known_is_parsed_by_canonical_name():
    assert parse_known(["overview:abc", "sessions_alias:A-b_9"], REGISTRY) == {
        "overview": "abc", "sessions": "A-b_9"}  # fmt: skip
    for bad in (["overview"], ["what:abc"], ["overview:"], ["overview:ab/c"],
                ["overview:a", "OVERVIEW:b"], ["overview:" + "a" * 65]):  # fmt: skip
        with pytest.raises(InvalidKnown):
            parse_known(bad, REGISTRY)


@pytest.mark.parametrize("layout", ["sections", "inline"])
def test_stretches_replace_known_sections_and_keep_the_rest_as_stored(layout):
    body = assemble(
        {"overview": _result({"a": 1}), "sessions": _result([{"id": 1}])},
        layout=layout,
        subject="s",
    )
    versions = body.section_versions
    assert versions is not None and body.piece_bounds is not None
    parts, unchanged = stretches(
        sections_json=body.sections_json, piece_bounds=body.piece_bounds, versions=versions,
        layout=layout, known={"overview": versions["overview"], "sessions": "stale"},
    )  # fmt: skip
    assert unchanged == ["overview"]
    assert [index for _, index in parts] == [None, 1]
    joined = b"".join(raw for raw, _ in parts)
    parsed = orjson.loads(joined if layout == "sections" else b"{" + joined + b"}")
    assert parsed == {
        "overview": {"id": "overview", "notModified": True, "version": versions["overview"]},
        "sessions": [{"id": 1}],
    }


def test_a_body_stored_without_pieces_gets_the_same_ones():
    results = {"overview": _result({"a": 1}), "sessions": _result([], status="failed")}
    body = assemble(results, layout="inline", subject="trainer:bootstrap:1")
    old = replace(
        body, section_versions=None, body_version=None, piece_bounds=None, deflate_bounds=None,
        sections_zstd=None, zstd_bounds=None, brotli_head=None, head_crc=None,
    )  # fmt: skip
    old.errors = [{"section": "sessions", "code": "SECTION_FETCH_ERROR", "message": "x"}]
    rebuilt = with_pieces(old, "trainer:bootstrap:1")
    assert rebuilt.section_versions == body.section_versions
    assert rebuilt.sections_json == body.sections_json
    assert rebuilt.piece_bounds == body.piece_bounds
    assert rebuilt.head_crc == body.head_crc
    assert with_pieces(body, "anything") is body


@pytest.mark.parametrize("layout", ["sections", "inline"])
@pytest.mark.parametrize("coding", ["gzip", "zstd", "br", "identity"])
def test_a_whole_body_is_its_stored_sections_behind_the_envelope(layout, coding):
    """Checksummed once when stored, a whole body's gzip is the bytes stitching gives.

    A body stored by the release before ``head_crc`` goes piece by piece: the
    same bytes. Every coding decodes to the sections, reusing their stored form.
    """
    sessions = [{"id": i} for i in range(50)]
    body = assemble({"overview": _result({"a": "x" * 300}), "sessions": _result(sessions)},
                    layout=layout, subject="s")  # fmt: skip
    stored = {"gzip": body.sections_deflate, "zstd": body.sections_zstd}.get(coding)
    moment = {"timestamp": "2026-12-06T00:00:00Z", "ttl": 300, "fromCache": True,
              "stale": False, "executionTime": 0.5}  # fmt: skip

    def sent(body) -> bytes:
        result = BatchResult(body=body, cache=CacheResult(body, True), cache_key="k",
                             user_id=None, started=0.0, fixed_moment=moment)  # fmt: skip
        rendered = render_batch(result, accept_encoding=coding)
        assert rendered.encoding == coding
        assert stored is None or stored in rendered.content  # reused, not compressed again
        return rendered.content

    now = sent(body)
    data = orjson.loads(decompressed(now, coding))["data"]
    assert (data["sections"] if layout == "sections" else data)["sessions"] == sessions
    if coding == "gzip":
        assert sent(replace(body, head_crc=None)) == now
