"""``manage.py cache stats | invalidate TAG... | warm [NAME...] | verify [--sample N] | listen``."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tabulate import tabulate

from caching import consistency
from caching.inspection import known_tags, namespace_stats, tag_generations, warm_times
from caching.listener import ChangeListener, ListenerError
from caching.metrics import flush_stats
from caching.tags import bump
from caching.tasks import warm_one
from caching.warming import run_warmer, warmers


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = "Inspect the cache, invalidate tags, run warmers."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("stats", help="Hit rates, tag generations, last warm times.")
        invalidate = sub.add_parser("invalidate", help="Bump tags, e.g. products or user:42.")
        invalidate.add_argument("tags", nargs="+")
        warm = sub.add_parser("warm", help="Run warmers now (all when none named).")
        warm.add_argument("names", nargs="*")
        warm.add_argument("--async", dest="use_celery", action="store_true", help="Queue them.")
        verify = sub.add_parser(
            "verify", help="Compare sampled cached entries with the database; exit 1 on a mismatch."
        )
        verify.add_argument(
            "--sample", type=_positive, default=None, help="Entries to compare (at least 1)."
        )

        listen = sub.add_parser(
            "listen", help="Follow PostgreSQL's change stream: every writer's changes bump tags."
        )
        listen.add_argument(
            "--reset", action="store_true",
            help="Start a new slot after the old one was dropped (invalidates every watched table)",
        )  # fmt: skip
        listen.add_argument(
            "--drop", action="store_true", help="Drop the slot and publication, then exit."
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action}")(**options)

    def _stats(self, **options: Any) -> None:
        rows = [
            [s.namespace, s.lookups, s.hits, s.stale, s.misses, s.coalesced, s.errors,
             f"{s.hit_rate:.1%}" if s.hit_rate is not None else "-", s.l1_hits, s.l2_hits]
            for s in namespace_stats()
        ]  # fmt: skip
        self.stdout.write(
            tabulate(
                rows,
                headers=[
                    "namespace",
                    "lookups",
                    "hits",
                    "stale",
                    "misses",
                    "coalesced",
                    "errors",
                    "hit rate",
                    "l1 hits",
                    "l2 hits",
                ],
            )  # fmt: skip
            if rows
            else "No cache lookups counted yet."
        )
        generations = tag_generations(known_tags())
        self.stdout.write("\nTag generations:")
        if generations is None:
            self.stdout.write("  Redis unreachable")
        else:
            for tag, generation in generations.items():
                self.stdout.write(f"  {tag}: {generation}")
        self.stdout.write("\nLast warmed:")
        for name, moment in warm_times().items():
            when = datetime.fromtimestamp(moment, UTC).isoformat() if moment else "never"
            self.stdout.write(f"  {name}: {when}")

    def _invalidate(self, tags: list[str], **options: Any) -> None:
        bump(tags)
        self.stdout.write(self.style.SUCCESS(f"Invalidated {', '.join(sorted(set(tags)))}."))

    def _warm(self, names: list[str], use_celery: bool, **options: Any) -> None:
        available = [w.name for w in warmers()]
        unknown = sorted(set(names) - set(available))
        if unknown:
            raise CommandError(
                f"Unknown warmer(s): {', '.join(unknown)}. Known: {', '.join(available)}"
            )
        for name in names or available:
            if use_celery:
                warm_one.delay(name)
                self.stdout.write(f"Queued {name}")
            else:
                run_warmer(name)
                self.stdout.write(f"Warmed {name}")
        flush_stats(force=True)

    def _verify(self, sample: int | None, **options: Any) -> None:
        report = consistency.verify(sample or settings.CACHE_VERIFY_SAMPLE)
        rows = [
            [namespace, n, report.inconsistent.get(namespace, 0)]
            for namespace, n in sorted(report.sampled.items())
        ]
        self.stdout.write(tabulate(rows, headers=["namespace", "sampled", "inconsistent"]))
        self.stdout.write(f"skipped (changed since stored, expired or gone): {report.skipped}")
        if report.any_inconsistent:
            raise CommandError("Cached entries differ from the database (see above).", returncode=1)

    def _listen(self, reset: bool, drop: bool, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            listener = ChangeListener()
            if drop:
                listener.drop()
                self.stdout.write(f"Dropped replication slot and publication {listener.slot}.")
                return
            listener.run(stop, reset=reset)
        except ListenerError as exc:  # one line for the operator, no traceback
            raise CommandError(f"cache listen: {exc}", returncode=2) from exc
