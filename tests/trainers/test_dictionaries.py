"""Delta delivery of bootstraps (RFC 9842 ``dcz``): compressed against the copy the client holds."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re

import orjson
import pytest
import zstandard
from django.core.cache import cache

from aggregation.dictionaries import DCZ_HEADER
from caching.process import reset_process_state
from tests.students.factories import StudentFactory
from tests.waiting import wait_until

from .factories import SessionFactory, TrainerDocumentFactory, TrainerFactory

pytestmark = pytest.mark.django_db(transaction=True)

_OFFER = re.compile(r'^match="(?P<match>[^"]+)", id="(?P<id>[A-Za-z0-9_.-]+)"$')


@pytest.fixture
def trainer():
    trainer = TrainerFactory()
    TrainerDocumentFactory(trainer=trainer)
    SessionFactory.create_batch(40, allocation__trainer=trainer)
    return trainer


def _url(trainer) -> str:
    return f"/api/v1/trainers/{trainer.pk}/bootstrap"


def _whole(client, url: str):
    """A whole bootstrap as a client that takes dcz asks for it (so its body is kept)."""
    response = client.get(url, HTTP_ACCEPT_ENCODING="dcz, gzip")
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    response.decoded = gzip.decompress(response.content)
    return response


def _holding(response, decoded: bytes | None = None) -> dict[str, str]:
    """The headers a client sends once it keeps ``response`` (decoded) as a dictionary."""
    offer = _OFFER.match(response["Use-As-Dictionary"])
    assert offer is not None, response["Use-As-Dictionary"]
    held = decoded if decoded is not None else response.decoded
    digest = base64.b64encode(hashlib.sha256(held).digest()).decode()
    return {
        "HTTP_ACCEPT_ENCODING": "dcz, gzip",
        "HTTP_AVAILABLE_DICTIONARY": f":{digest}:",
        "HTTP_DICTIONARY_ID": f'"{offer["id"]}"',
    }


def _undelta(content: bytes, dictionary: bytes) -> bytes:
    """What a client does with a ``dcz`` body: check the hash, decompress with its dictionary."""
    assert content[:8] == DCZ_HEADER
    assert content[8:40] == hashlib.sha256(dictionary).digest()
    raw = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdDecompressor(dict_data=raw).decompressobj().decompress(content[40:])


def _sections(body: bytes) -> dict:
    data = orjson.loads(body)["data"]
    return {k: v for k, v in data.items() if k != "metadata"}


def _change_bio(client, trainer, bio: str) -> None:
    response = client.patch(f"/api/v1/trainers/{trainer.pk}/profile", {"bio": bio}, format="json")
    assert response.status_code == 200


def test_after_a_change_the_bootstrap_comes_as_a_delta_of_the_copy_held(client_for, trainer):
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    assert _OFFER.match(first["Use-As-Dictionary"])["match"] == f"{_url(trainer)}?*"
    assert "Available-Dictionary" in first["Vary"]
    held = _holding(first)
    _change_bio(client, trainer, "Now teaching pilates")

    delta = client.get(_url(trainer), **held)  # recomputed after the change
    assert (delta.status_code, delta["Content-Encoding"]) == (200, "dcz")
    plain = client.get(_url(trainer))
    assert _sections(_undelta(delta.content, first.decoded)) == _sections(plain.content)
    assert _sections(plain.content)["overview"]["profile"]["bio"] == "Now teaching pilates"
    # A few hundred bytes against the whole bootstrap gzipped.
    whole = client.get(_url(trainer), HTTP_ACCEPT_ENCODING="gzip")
    assert len(delta.content) < 0.1 * len(whole.content), (len(delta.content), len(whole.content))
    again = client.get(_url(trainer), **held)  # from the cache now, the dictionary remembered
    assert again["Content-Encoding"] == "dcz"
    assert _sections(_undelta(again.content, first.decoded)) == _sections(plain.content)
    # The decoded delta is itself a whole response, offered as the next dictionary.
    decoded = _undelta(again.content, first.decoded)
    assert _holding(again, decoded)["HTTP_DICTIONARY_ID"] != held["HTTP_DICTIONARY_ID"]
    chained = client.get(_url(trainer), **_holding(again, decoded))
    assert chained["Content-Encoding"] == "dcz"
    assert _sections(_undelta(chained.content, decoded)) == _sections(plain.content)


def test_known_and_a_dictionary_together(client_for, trainer):
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    versions = orjson.loads(first.decoded)["data"]["metadata"]["sectionVersions"]
    known = ",".join(f"{s}:{v}" for s, v in versions.items())
    _change_bio(client, trainer, "Changed")
    both = client.get(_url(trainer), {"known": known}, **_holding(first))
    assert both["Content-Encoding"] == "dcz"
    assert "Use-As-Dictionary" not in both  # not a whole response: no dictionary of its own
    data = orjson.loads(_undelta(both.content, first.decoded))["data"]
    assert [s for s in versions if not data[s].get("notModified")] == ["overview"]


@pytest.mark.parametrize(
    "spoil",
    [
        {"HTTP_AVAILABLE_DICTIONARY": ":" + base64.b64encode(b"x" * 32).decode() + ":"},
        {"HTTP_DICTIONARY_ID": '"AAAA.e30"'},
        {"HTTP_DICTIONARY_ID": '"not an id"'},
        {"HTTP_DICTIONARY_ID": '"' + "A" * 2000 + '"'},
        {"HTTP_AVAILABLE_DICTIONARY": "not-a-hash"},
        {"HTTP_ACCEPT_ENCODING": "gzip, dcz;q=0"},
    ],
)
def test_anything_the_server_cannot_match_is_sent_as_usual(client_for, trainer, spoil):
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    _change_bio(client, trainer, "Changed")
    response = client.get(_url(trainer), **(_holding(first) | spoil))
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert _sections(gzip.decompress(response.content)) == _sections(
        client.get(_url(trainer)).content
    )


def test_a_flushed_cache_or_no_kept_body_means_no_delta(client_for, trainer):
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    held = _holding(first)
    cache.clear()  # Redis flushed: the kept body is gone with everything else
    response = client.get(_url(trainer), **held)
    assert (response.status_code, response["Content-Encoding"]) == (200, "gzip")


def test_a_dictionary_of_one_subject_does_nothing_for_another(client_for, trainer):
    other = TrainerFactory()
    mine, theirs = client_for(trainer.user), client_for(other.user)
    held = _holding(_whole(mine, _url(trainer)))
    _whole(theirs, _url(other))
    # The id and hash of my bootstrap, sent for theirs: their kept bodies are under their key.
    response = theirs.get(_url(other), **held)
    assert (response.status_code, response["Content-Encoding"]) == (200, "gzip")
    assert orjson.loads(gzip.decompress(response.content))["data"]["overview"]["profile"][
        "id"
    ] == str(other.pk)


def test_the_student_bootstrap_is_offered_too(client_for):
    student = StudentFactory()
    client = client_for(student.user)
    first = _whole(client, f"/api/v1/students/{student.pk}/bootstrap")
    again = client.get(f"/api/v1/students/{student.pk}/bootstrap", **_holding(first))
    assert again["Content-Encoding"] == "dcz"
    assert _sections(_undelta(again.content, first.decoded)) == _sections(first.decoded)


def test_off_no_offer_and_no_delta(client_for, trainer, settings):
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    settings.DELTA_DICTIONARIES = False
    response = client.get(_url(trainer), **_holding(first))
    assert "Use-As-Dictionary" not in response
    assert response["Content-Encoding"] == "gzip"


def test_redis_down_then_back_sends_as_usual_then_deltas_again(client_for, trainer, own_redis):
    client = client_for(trainer.user)
    held = _holding(_whole(client, _url(trainer)))
    assert client.get(_url(trainer), **held)["Content-Encoding"] == "dcz"
    own_redis.stop()
    down = client.get(_url(trainer), **held)  # nothing kept can be read: as usual, no error
    assert (down.status_code, down["Content-Encoding"]) == (200, "gzip")
    assert "errors" not in orjson.loads(gzip.decompress(down.content))
    own_redis.start()  # empty: the kept bodies went with it
    assert client.get(_url(trainer), **held)["Content-Encoding"] == "gzip"

    def deltas_again() -> bool:  # once the breaker lets Redis be used: computed, kept again
        fresh = _whole(client, _url(trainer))
        return client.get(_url(trainer), **_holding(fresh))["Content-Encoding"] == "dcz"

    wait_until(deltas_again, timeout=10, message="no delta once Redis was back")


def test_a_recomputed_body_is_kept_beside_the_one_a_client_holds(client_for, trainer):
    """The same content computed again (a warmer, fresh=true) differs in lastUpdated."""
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    again = client.get(_url(trainer), {"fresh": "true"}, HTTP_ACCEPT_ENCODING="dcz, gzip")
    assert (
        orjson.loads(gzip.decompress(again.content))["data"]["metadata"]["bodyVersion"]
        == (orjson.loads(first.decoded)["data"]["metadata"]["bodyVersion"])
    )
    reset_process_state()  # another worker: nothing remembered in this process
    delta = client.get(_url(trainer), **_holding(first))
    assert delta["Content-Encoding"] == "dcz"
    assert _sections(_undelta(delta.content, first.decoded)) == _sections(
        gzip.decompress(again.content)
    )


def test_a_wrong_hash_first_does_not_spoil_the_id_for_its_holder(client_for, trainer):
    client = client_for(trainer.user)
    first = _whole(client, _url(trainer))
    _change_bio(client, trainer, "Changed")
    wrong = ":" + base64.b64encode(b"y" * 32).decode() + ":"
    spoiled = client.get(_url(trainer), **(_holding(first) | {"HTTP_AVAILABLE_DICTIONARY": wrong}))
    assert spoiled["Content-Encoding"] == "gzip"
    assert client.get(_url(trainer), **_holding(first))["Content-Encoding"] == "dcz"


def test_a_client_that_does_not_take_dcz_has_nothing_kept(client_for, trainer):
    client = client_for(trainer.user)
    first = client.get(_url(trainer), HTTP_ACCEPT_ENCODING="gzip")
    assert "Use-As-Dictionary" in first  # offered, but its body is not kept for it
    assert not [k for k in cache.keys("*") if "dictionary:" in k]
    held = _holding(first, gzip.decompress(first.content))
    assert client.get(_url(trainer), **held)["Content-Encoding"] == "gzip"
