"""Content codings stitched from pieces compressed once (``aggregation/encoding.py``)."""

from __future__ import annotations

import gzip
import os

import brotli
import pytest

from aggregation.encoding import (
    accepted_encodings,
    brotli_finished,
    brotli_head,
    choose_encoding,
    deflate_segment,
    gzip_stitched,
    zstd_frame,
    zstd_stitched,
)
from tests.decoding import decompressed

PIECES = [b'{"a":' + b"[1,2,3]" * 500, b',"b":"' + os.urandom(300).hex().encode() + b'"}']


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", {"gzip": 1.0, "deflate": 1.0, "br": 1.0}),
        ("br;q=0.5, gzip;q=1.0, zstd;q=0", {"br": 0.5, "gzip": 1.0, "zstd": 0.0}),
        ("GZIP ; q=0.3", {"gzip": 0.3}),
        ("gzip;q=x, br", {"gzip": 0.0, "br": 1.0}),
        ("gzip;q=2", {"gzip": 1.0}),
        (" , ;, br", {"br": 1.0}),
        ("", {}),
    ],
)
def test_accept_encoding_is_parsed_with_q_values(header, expected):
    assert accepted_encodings(header) == expected


@pytest.mark.parametrize(
    ("header", "offered", "chosen"),
    [
        ("gzip, br", ("br", "zstd", "gzip"), "br"),  # a tie: the server's order
        ("gzip, br", ("zstd", "gzip", "br"), "gzip"),
        ("br;q=0.2, gzip;q=0.8", ("br", "gzip"), "gzip"),
        ("*", ("br", "gzip"), "br"),
        ("*, br;q=0", ("br", "gzip"), "gzip"),
        ("identity", ("br", "gzip"), "identity"),
        ("br;q=0, gzip;q=0.000", ("br", "gzip"), "identity"),
        ("", ("br", "gzip"), "identity"),
    ],
)
def test_the_best_coding_the_client_takes_is_chosen(header, offered, chosen):
    assert choose_encoding(header, offered) == chosen


def test_gzip_and_zstd_reuse_precompressed_pieces_among_fresh_runs():
    runs = [(b"head", None), (PIECES[0], None), (PIECES[1], None), (b"tail", None)]
    whole = b"".join(raw for raw, _ in runs)
    gz = gzip_stitched([(raw, deflate_segment(raw) if i in (1, 2) else None)
                        for i, (raw, _) in enumerate(runs)])  # fmt: skip
    zs = zstd_stitched([(raw, zstd_frame(raw, 3) if i == 1 else None)
                        for i, (raw, _) in enumerate(runs)], 3)  # fmt: skip
    assert gzip.decompress(gz) == whole
    assert decompressed(zs, "zstd") == whole
    assert len(gz) < len(whole) / 2 and len(zs) < len(whole) / 2


@pytest.mark.parametrize("tail_length", [1, 300, 65_536, 65_537, 200_000])
def test_a_brotli_head_is_finished_with_an_uncompressed_tail(tail_length):
    head = b"".join(PIECES)
    tail = (b"0123456789abcdef" * (tail_length // 16 + 1))[:tail_length]
    stream = brotli_finished(brotli_head(head, 6), tail)
    assert brotli.decompress(stream) == head + tail
    assert len(stream) < len(head) / 2 + tail_length + 3 * (tail_length // 65_536 + 1) + 1
