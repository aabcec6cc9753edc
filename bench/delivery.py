"""The delivery rows of the benchmark: section versions (``known=``) and encodings.

A trainer's app refreshes its bootstrap (200 sessions) on every start; today
(ETag, 304) any change sends all four sections again. Side by side, on one
gunicorn and one trainer, each row one ``wrk`` run at one connection plus the
bytes of one response (its body, and on the wire with its status and headers):

- the warm bootstrap whole (gzip), and its 304 for an unchanged ETag (today);
- after one profile change: the whole bootstrap again (today), and with
  ``known=`` the four versions the app held before the change (only the
  overview comes back);
- unchanged, with all four sections ``known=``: alone (four stand-ins), and
  with the ETag held as ``If-None-Match`` (a 304, as the client docs advise);
- the anonymous homepage and the bootstrap in identity, gzip, zstd and br;
- after the profile change, a client holding the bootstrap it had before as a
  dictionary (RFC 9842): the whole bootstrap, and ``known=``, in ``dcz``.

The targets: the refresh after a profile change ships at most 10% of the
whole bootstrap's bytes and answers within 1.2x a warm hit's p50; an
unchanged bootstrap with every section known at most 3%; the homepage in
Brotli at most 0.85x its gzip size.

    .venv/bin/python -m bench.delivery                  # seeds its own small database once
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import brotli
import zstandard

from bench.harness import (
    ROOT,
    Client,
    bench_environment,
    flush_redis,
    free_port,
    prepare_database,
    print_table,
    serve,
    stop,
    trainer_tokens,
    write_json,
    wrk,
)

HOME = "/api/v1/homepage"
CODINGS = ("identity", "gzip", "zstd", "br")


def _decoded(body: bytes, coding: str | None) -> Any:
    if coding == "gzip":
        body = gzip.decompress(body)
    elif coding == "br":
        body = brotli.decompress(body)
    elif coding == "zstd":  # every frame, as HTTP clients read it
        body = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(body)
    return json.loads(body)


def _row(port: int, path: str, headers: dict[str, str], seconds: int) -> dict[str, Any]:
    """One ``wrk`` run at one connection on ``path``, plus the status and bytes of one response."""
    status, body, response = Client(port).get(path, headers)
    row = wrk(f"http://127.0.0.1:{port}{path}", 1, seconds, headers)
    # On the wire: the status line, each header line, the blank line, the body.
    head = len(f"HTTP/1.1 {status} \r\n\r\n") + sum(
        len(f"{name}: {value}\r\n") for name, value in response.items()
    )
    row |= {
        "status": status,
        "bytes": len(body),
        "wire_bytes": head + len(body),
        "encoding": response.get("Content-Encoding"),
    }
    return row


def _holding(body: bytes, offer: str) -> dict[str, str]:
    """The headers of a client holding ``body`` as the dictionary ``offer`` named."""
    ident = offer.split('id="', 1)[1].rstrip('"')
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return {"Accept-Encoding": "dcz, gzip", "Available-Dictionary": f":{digest}:",
            "Dictionary-ID": f'"{ident}"'}  # fmt: skip


def _undelta(body: bytes, dictionary: bytes) -> Any:
    """A ``dcz`` body decoded as a client does: past its header, with the dictionary it names."""
    raw = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    reader = zstandard.ZstdDecompressor(dict_data=raw).decompressobj()
    return json.loads(reader.decompress(body[40:]))


def _known(versions: dict[str, str]) -> str:
    return ",".join(f"{section}:{version}" for section, version in versions.items())


def delivery_rows(port: int, trainer: tuple[str, int], seconds: int) -> dict[str, Any]:
    """Every row and target above, on a running server; changes the trainer's bio once."""
    token, trainer_id = trainer
    auth = {"Authorization": f"Token {token}"}
    gz = {**auth, "Accept-Encoding": "gzip"}
    bootstrap = f"/api/v1/trainers/{trainer_id}/bootstrap"
    client = Client(port)
    status, body, head = client.get(bootstrap, gz)
    if status != 200:
        raise RuntimeError(f"GET {bootstrap}: {status}")
    before = _decoded(body, head.get("Content-Encoding"))["data"]
    sessions = len(before["sessions"])
    versions = before["metadata"]["sectionVersions"]
    etag = head["ETag"]
    # A client keeping the bootstrap as a dictionary (RFC 9842): the bytes it decoded
    # (it takes dcz, so the server keeps the body for it).
    _, held_body, held_head = client.get(bootstrap, {**auth, "Accept-Encoding": "dcz, gzip"})
    held_body = gzip.decompress(held_body)
    holding = _holding(held_body, held_head["Use-As-Dictionary"])

    rows: dict[str, dict[str, Any]] = {}
    rows["bootstrap warm, whole (gzip)"] = _row(port, bootstrap, gz, seconds)
    rows["bootstrap unchanged, If-None-Match (today: 304)"] = _row(
        port, bootstrap, {**gz, "If-None-Match": etag}, seconds
    )
    rows["bootstrap unchanged, all four known= (gzip)"] = _row(
        port, f"{bootstrap}?known={_known(versions)}", gz, seconds
    )
    rows["bootstrap unchanged, all four known= and If-None-Match"] = _row(
        port, f"{bootstrap}?known={_known(versions)}", {**gz, "If-None-Match": etag}, seconds
    )
    status, _, _ = client.request(
        "PATCH",
        f"/api/v1/trainers/{trainer_id}/profile",
        {**auth, "Content-Type": "application/json"},
        json.dumps({"bio": f"Refreshed by the delivery benchmark, {time.time()}."}).encode(),
    )
    if status != 200:
        raise RuntimeError(f"PATCH the profile: {status}")
    refreshed = f"{bootstrap}?known={_known(versions)}"
    # The first request after the change recomputes; wrk then measures the cached answer.
    _, body, head = client.get(refreshed, gz)
    after = _decoded(body, head.get("Content-Encoding"))["data"]
    changed = [s for s in versions if not (after[s] or {}).get("notModified")]
    rows["bootstrap after a profile change, whole (today, gzip)"] = _row(
        port, bootstrap, {**gz, "If-None-Match": etag}, seconds
    )
    rows["bootstrap after a profile change, known= (gzip)"] = _row(port, refreshed, gz, seconds)
    rows["bootstrap after a profile change, known= and If-None-Match (gzip)"] = _row(
        port, refreshed, {**gz, "If-None-Match": etag}, seconds
    )
    _, body, head = client.get(bootstrap, {**auth, **holding})
    if (
        head.get("Content-Encoding") != "dcz"
        or _undelta(body, held_body)["data"]["overview"] != (after["overview"])
    ):
        raise RuntimeError("The bootstrap held as a dictionary did not come back as its delta.")
    rows["bootstrap after a profile change, whole, dcz against the copy held"] = _row(
        port, bootstrap, {**auth, **holding}, seconds
    )
    rows["bootstrap after a profile change, known= and dcz"] = _row(
        port, refreshed, {**auth, **holding}, seconds
    )
    for coding in CODINGS:
        headers = {} if coding == "identity" else {"Accept-Encoding": coding}
        rows[f"homepage warm, {coding}"] = _row(port, HOME, headers, seconds)
    for coding in CODINGS[1:]:
        rows[f"bootstrap warm, whole ({coding})"] = _row(
            port, bootstrap, {**auth, "Accept-Encoding": coding}, seconds
        )
    rows["bootstrap after a profile change, known= (br, zstd, gzip)"] = _row(
        port, refreshed, {**auth, "Accept-Encoding": "br, zstd, gzip"}, seconds
    )
    # Uncompressed, the same three responses (bytes only).
    now_known = f"{bootstrap}?known={_known(after['metadata']['sectionVersions'])}"
    plain = {
        name: len(client.get(path, auth)[1])
        for name, path in [
            ("whole", bootstrap),
            ("known= after a profile change", refreshed),
            ("all four known=", now_known),
        ]
    }
    client.close()

    whole = rows["bootstrap warm, whole (gzip)"]
    known = rows["bootstrap after a profile change, known= (gzip)"]
    unchanged = rows["bootstrap unchanged, all four known= (gzip)"]
    conditional = rows["bootstrap unchanged, all four known= and If-None-Match"]
    home_br, home_gzip = rows["homepage warm, br"], rows["homepage warm, gzip"]
    delta = rows["bootstrap after a profile change, whole, dcz against the copy held"]
    targets = {
        "known= after a profile change, bytes vs whole (<= 0.10)": (
            known["bytes"] / whole["bytes"], 0.10),
        "dcz after a profile change, bytes vs whole (<= 0.10)": (
            delta["bytes"] / whole["bytes"], 0.10),
        "dcz after a profile change, p50 vs warm hit (<= 1.2)": (
            delta["p50_ms"] / whole["p50_ms"], 1.2),
        "known= after a profile change, p50 vs warm hit (<= 1.2)": (
            known["p50_ms"] / whole["p50_ms"], 1.2),
        "unchanged, all four known= and If-None-Match, body bytes vs whole (<= 0.03)": (
            conditional["bytes"] / whole["bytes"], 0.03),
        "the same, on the wire with headers, vs whole (<= 0.03)": (
            conditional["wire_bytes"] / whole["wire_bytes"], 0.03),
        "unchanged, all four known= without If-None-Match, bytes vs whole (<= 0.03)": (
            unchanged["bytes"] / whole["bytes"], 0.03),
        "homepage br bytes vs gzip (<= 0.85)": (home_br["bytes"] / home_gzip["bytes"], 0.85),
        "uncompressed: known= after a profile change vs whole (<= 0.10)": (
            plain["known= after a profile change"] / plain["whole"], 0.10),
        "uncompressed: unchanged, all four known= vs whole (<= 0.03)": (
            plain["all four known="] / plain["whole"], 0.03),
    }  # fmt: skip
    return {
        "sessions": sessions,
        "changed_sections": changed,
        "rows": rows,
        "uncompressed_bytes": plain,
        "targets": {
            name: {"measured": round(value, 3), "target": target, "met": value <= target}
            for name, (value, target) in targets.items()
        },
    }


def print_delivery(delivery: dict[str, Any]) -> None:
    """The rows and the targets, as tables."""
    print(
        f"trainer bootstrap with {delivery['sessions']} sessions; "
        f"sent whole after the profile change: {', '.join(delivery['changed_sections'])}"
    )
    print_table(
        [
            [
                name,
                r["status"],
                r["encoding"] or "identity",
                r["bytes"],
                r["wire_bytes"],
                r["p50_ms"],
                r["p99_ms"],
                r["rps"],
            ]
            for name, r in delivery["rows"].items()
        ],  # fmt: skip
        headers=[
            "delivery (wrk, 1 conn)",
            "status",
            "coding",
            "bytes",
            "on the wire",
            "p50 ms",
            "p99 ms",
            "req/s",
        ],
    )
    print_table(
        [
            [name, t["measured"], t["target"], "met" if t["met"] else "MISSED"]
            for name, t in delivery["targets"].items()
        ],  # fmt: skip
        headers=["target", "measured", "target", ""],
    )


def main() -> int:
    """Seed (once), start gunicorn, run the delivery rows, print them and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=5, help="Length of each wrk run.")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_delivery"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "delivery.json"))
    args = parser.parse_args()
    env = {
        **os.environ,
        **bench_environment(args.database_url, args.redis_url, Path(args.out).parent),
    }
    prepare_database(env, args.products)
    trainer = trainer_tokens(env)[0]
    flush_redis(args.redis_url)
    port = free_port()
    server = serve({**env, "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"}, port)
    try:
        delivery = delivery_rows(port, trainer, args.seconds)
    finally:
        stop(server)
    print_delivery(delivery)
    write_json(Path(args.out), {"products": args.products, "delivery": delivery})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
