"""``manage.py import_storefront``: load JSON-lines exports in the seed's shape (see imports.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, IntegrityError
from tqdm import tqdm

from homepage.demo import clear_storefront
from homepage.imports import COLLECTIONS, CollectionName, DocumentError, Refs, load


class Command(BaseCommand):
    help = (
        "Load storefront documents in the seed's nested shape, one JSON document per line "
        "(mongoexport's output), into the storefront's database (PostgreSQL or MongoDB)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for collection in COLLECTIONS:
            parser.add_argument(
                f"--{collection}", type=Path, metavar="FILE", help=f"{collection} (JSON lines)"
            )
        parser.add_argument(
            "--clear", action="store_true", help="delete the whole storefront first"
        )
        parser.add_argument("--batch-size", type=int, default=5_000)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        files = {c: options[c] for c in COLLECTIONS if options[c] is not None}
        if not files:
            raise CommandError(f"name at least one file: --{' / --'.join(COLLECTIONS)}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        for path in files.values():
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        try:
            if options["clear"]:
                clear_storefront()
            refs = Refs()
            counts = {  # stores first: the others point at them
                collection: self._load(collection, path, refs, options)
                for collection, path in files.items()
            }
        except DatabaseError as exc:  # unreachable, or gone in the middle
            raise CommandError(
                f"the storefront's database failed ({exc.__cause__ or exc}); "
                "the batches before it were imported"
            ) from exc
        self.stdout.write(f"Imported {counts}.")

    def _load(
        self, collection: CollectionName, path: Path, refs: Refs, options: dict[str, Any]
    ) -> int:
        with (
            path.open("rb") as lines,
            tqdm(desc=collection, unit=" docs", disable=options["no_progress"]) as bar,
        ):
            try:
                return load(
                    collection,
                    lines,
                    refs=refs,
                    name=str(path),
                    batch_size=options["batch_size"],
                    progress=lambda done: bar.update(done - bar.n),
                )
            except DocumentError as exc:
                raise CommandError(
                    f"{exc} (the batches before it were imported; --clear starts again)"
                ) from exc
            except IntegrityError as exc:
                raise CommandError(
                    f"{path}: a document is already in the storefront ({exc}); "
                    "import with --clear to replace everything"
                ) from exc
