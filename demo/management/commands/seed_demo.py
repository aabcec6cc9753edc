"""``manage.py seed_demo``: demo data of a requested size for every app.

Each app seeds its own part (``homepage/demo.py``, ``trainers/demo.py``,
``students/demo.py``); this command makes the accounts, the word pools and the
random generator they share, and runs them in order. Reproducible with ``--seed``.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from faker import Faker
from rest_framework.authtoken.models import Token

from homepage.demo import StorefrontCounts, StorefrontSeeder, clear_storefront, has_storefront_data
from students.demo import clear_students, seed_students
from trainers.demo import clear_enrolments, clear_trainers, seed_trainers

BATCH_SIZE = 5_000
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the printed demo login, embedded mode only
Size = Literal["small", "medium", "large"]  # --size
SIZES: dict[Size, tuple[int, ...]] = {
    # products, stores, events, offers, users, trainers, students, sessions per trainer
    "small": (2_000, 200, 300, 600, 20, 10, 40, 300),
    "medium": (100_000, 5_000, 5_000, 20_000, 500, 100, 1_000, 300),
    "large": (1_000_000, 50_000, 50_000, 200_000, 5_000, 500, 5_000, 300),
}
COUNTED = (
    "products", "stores", "events", "offers", "users", "trainers", "students",
    "sessions_per_trainer",
)  # fmt: skip
DEMO_USERNAMES = r"^(shopper|trainer|student)[0-9]+$"


def demo_users(prefix: str, count: int) -> list:
    """Accounts ``{prefix}1``... with API tokens; only ``{prefix}1`` can sign in.

    ``{prefix}1`` gets the demo password (the login the banner prints); the
    others have unusable passwords.
    """
    if count == 0:
        return []
    User = get_user_model()  # noqa: N806
    names = [f"{prefix}{i}" for i in range(1, count + 1)]
    users = [User(username=name, email=f"{name}@example.com") for name in names]
    for user in users:
        user.set_unusable_password()
    users[0].set_password(DEMO_PASSWORD)
    users = User.objects.bulk_create(users, batch_size=BATCH_SIZE)
    Token.objects.bulk_create(
        [Token(user=u, key=Token.generate_key()) for u in users], batch_size=BATCH_SIZE
    )
    return users


class Command(BaseCommand):
    help = "Generate demo data: storefront, shoppers, trainers, students and their sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", choices=SIZES, default="small")
        parser.add_argument("--products", type=int, help="Override the size's product count.")
        parser.add_argument("--stores", type=int)
        parser.add_argument("--events", type=int)
        parser.add_argument("--offers", type=int)
        parser.add_argument("--users", type=int, help="Shoppers with category affinities.")
        parser.add_argument("--trainers", type=int)
        parser.add_argument("--students", type=int)
        parser.add_argument("--sessions-per-trainer", type=int)
        parser.add_argument("--seed", type=int, default=42, help="Random seed (reproducible).")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if data exists.")
        parser.add_argument("--clear", action="store_true", help="Delete existing demo data first.")
        parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")

    def handle(self, *args: Any, **opts: Any) -> None:
        counts = dict(zip(COUNTED, SIZES[opts["size"]], strict=True))
        for name in counts:
            if opts[name] is not None:
                if opts[name] < 0:
                    raise CommandError(f"--{name.replace('_', '-')} must be >= 0")
                counts[name] = opts[name]
        present = self._present()
        if present and opts["if_empty"]:
            self.stdout.write("Demo data already present; nothing to do.")
            return
        if present and not opts["clear"]:
            raise CommandError(
                "Demo data is already present: add --clear to replace it, "
                "or --if-empty to leave it."
            )
        rng = random.Random(opts["seed"])
        fake = Faker()
        fake.seed_instance(opts["seed"])
        words = [fake.unique.word().title() for _ in range(300)]
        companies = [fake.unique.company() for _ in range(200)]
        now = timezone.now()

        if opts["clear"]:
            self._clear()
        self._admin()
        shoppers = demo_users("shopper", counts["users"])
        StorefrontSeeder(
            rng=rng, now=now, words=words, companies=companies, progress=not opts["no_progress"]
        ).seed(
            StorefrontCounts(
                counts["products"], counts["stores"], counts["events"], counts["offers"]
            ),
            shoppers,
        )
        with transaction.atomic():
            trainers = seed_trainers(
                demo_users("trainer", counts["trainers"]), rng=rng, names=words
            )
            seed_students(
                demo_users("student", counts["students"]),
                trainers,
                sessions_per_trainer=counts["sessions_per_trainer"],
                rng=rng,
                now=now,
                names=words,
            )
        self.stdout.write(self.style.SUCCESS(f"Seeded {counts}."))

    def _present(self) -> bool:
        demo = get_user_model().objects.filter(username__regex=DEMO_USERNAMES)
        return has_storefront_data() or demo.exists()

    def _admin(self) -> None:
        User = get_user_model()  # noqa: N806
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
        )
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()
        Token.objects.get_or_create(user=admin)

    def _clear(self) -> None:
        with transaction.atomic():
            clear_enrolments()
            clear_students()
            clear_trainers()
            clear_storefront()
            get_user_model().objects.filter(username__regex=DEMO_USERNAMES).delete()
