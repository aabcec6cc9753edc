"""What a request says it holds (``aggregation/dictionaries.py``): parsed strictly, never trusted."""

from __future__ import annotations

import base64

import pytest

from aggregation.dictionaries import dictionary_id, held_dictionary

MOMENT = {"timestamp": "2026-12-06T03:04:25.604660Z", "userId": "7", "ttl": 300,
          "fromCache": True, "stale": False, "executionTime": 0.48}  # fmt: skip
DIGEST = base64.b64encode(bytes(range(32))).decode()


def _meta(**headers: str) -> dict[str, str]:
    return {"HTTP_ACCEPT_ENCODING": "gzip, dcz", "HTTP_AVAILABLE_DICTIONARY": f":{DIGEST}:",
            "HTTP_DICTIONARY_ID": f'"{dictionary_id("G0-5Ica4dfhr136a", MOMENT)}"'} | headers  # fmt: skip


def test_an_id_gives_back_the_version_and_moment_it_was_made_of():
    held = held_dictionary(_meta())
    assert held is not None
    assert (held.digest, held.version, held.moment) == (bytes(range(32)), "G0-5Ica4dfhr136a",
                                                             MOMENT)  # fmt: skip
    assert held_dictionary(_meta(HTTP_ACCEPT_ENCODING="dcz;q=0.5")) is not None


def _packed(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ACCEPT_ENCODING": "gzip, br"},  # does not take dcz
        {"HTTP_ACCEPT_ENCODING": "dcz;q=0"},
        {"HTTP_AVAILABLE_DICTIONARY": ""},
        {"HTTP_AVAILABLE_DICTIONARY": DIGEST},  # not an sf-binary
        {"HTTP_AVAILABLE_DICTIONARY": ":" + base64.b64encode(b"short").decode() + ":"},
        {"HTTP_DICTIONARY_ID": "unquoted"},
        {"HTTP_DICTIONARY_ID": '"v.' + _packed(b"[1,2]") + '"'},  # not an object
        {"HTTP_DICTIONARY_ID": '"v.' + _packed(b'{"timestamp":1}') + '"'},  # missing, mistyped
        {"HTTP_DICTIONARY_ID": '"v.' + _packed(b"[" * 5000 + b"]" * 5000) + '"'},  # too long
        {"HTTP_DICTIONARY_ID": '"v.' + _packed(b'{"a":"\\u0000"}') + '"'},
        {"HTTP_DICTIONARY_ID": '"v.!!"'},
        {"HTTP_DICTIONARY_ID": '"' + "v" * 65 + '.e30"'},  # a version too long
        {"HTTP_DICTIONARY_ID": '".e30"'},
        {"HTTP_DICTIONARY_ID": '"abc\x00.e30"'},  # NUL
        {"HTTP_DICTIONARY_ID": '"\u00e9t\u00e9.e30"'},  # not ASCII
        {"HTTP_AVAILABLE_DICTIONARY": ":" + "A" * 10_000 + ":"},
    ],
)
def test_anything_else_is_no_dictionary(headers):
    assert held_dictionary(_meta(**headers)) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("ttl", True), ("ttl", "300"), ("fromCache", 1), ("executionTime", "0.4"), ("userId", 7)],
)
def test_a_moment_of_the_wrong_types_is_no_dictionary(key, value):
    ident = dictionary_id("v1", MOMENT | {key: value})
    assert held_dictionary(_meta(HTTP_DICTIONARY_ID=f'"{ident}"')) is None
    extra = dictionary_id("v1", MOMENT | {"other": 1})
    assert held_dictionary(_meta(HTTP_DICTIONARY_ID=f'"{extra}"')) is None
