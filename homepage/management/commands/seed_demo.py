"""``manage.py seed_demo``: a realistic storefront data set of a requested size.

Fast on purpose: names come from small pools made once with Faker, rows are
built in memory and written with ``bulk_create`` in batches, so a million
products take minutes on PostgreSQL, not hours. Reproducible with ``--seed``.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from faker import Faker
from rest_framework.authtoken.models import Token
from tqdm import tqdm

from homepage.models import CategoryAffinity, Event, Offer, Product, Store
from trainers.demo import TrainingCounts, seed_training

BATCH_SIZE = 5_000
CATEGORIES = [
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "books",
    "toys",
    "grocery",
    "travel",
    "health",
    "automotive",
    "music",
]
CITIES = [  # name, longitude, latitude
    ("Bengaluru", 77.5946, 12.9716),
    ("Mumbai", 72.8777, 19.0760),
    ("Delhi", 77.1025, 28.7041),
    ("London", -0.1276, 51.5072),
    ("New York", -74.0060, 40.7128),
    ("Berlin", 13.4050, 52.5200),
]
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the printed demo login, embedded mode only
SIZES = {  # products, stores, events, offers, users, trainers, students, sessions per trainer
    "small": (2_000, 200, 300, 600, 20, 10, 40, 300),
    "medium": (100_000, 5_000, 5_000, 20_000, 500, 100, 1_000, 300),
    "large": (1_000_000, 50_000, 50_000, 200_000, 5_000, 500, 5_000, 300),
}
COUNTED = (
    "products", "stores", "events", "offers", "users", "trainers", "students",
    "sessions_per_trainer",
)  # fmt: skip


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(f"{rng.uniform(low, high):.2f}")


class Command(BaseCommand):
    help = "Generate demo storefront data (products, stores, events, offers, users)."

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

    def handle(self, *args, **opts) -> None:
        if opts["if_empty"] and Product.objects.exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        counts = dict(zip(COUNTED, SIZES[opts["size"]], strict=True))
        for name in counts:
            if opts[name] is not None:
                if opts[name] < 0:
                    raise CommandError(f"--{name.replace('_', '-')} must be >= 0")
                counts[name] = opts[name]
        self.rng = random.Random(opts["seed"])
        self.progress = not opts["no_progress"]
        fake = Faker()
        fake.seed_instance(opts["seed"])
        self.words = [fake.unique.word().title() for _ in range(300)]
        self.companies = [fake.unique.company() for _ in range(200)]
        self.now = timezone.now()

        if opts["clear"]:
            self._clear()
        stores = self._stores(counts["stores"])
        self._products(counts["products"], stores)
        self._events(counts["events"])
        self._offers(counts["offers"], stores)
        self._users(counts["users"])
        with transaction.atomic():
            seed_training(
                TrainingCounts(
                    counts["trainers"], counts["students"], counts["sessions_per_trainer"]
                ),
                rng=self.rng,
                now=self.now,
                names=self.words,
                password=DEMO_PASSWORD,
            )
        self.stdout.write(self.style.SUCCESS(f"Seeded {counts}."))

    def _clear(self) -> None:
        from trainers.models import Allocation, Course, PayoutClaim, Session

        PayoutClaim.objects.all().delete()
        Session.objects.all().delete()
        Allocation.objects.all().delete()
        get_user_model().objects.filter(
            username__regex=r"^(trainer|student)[0-9]+$"
        ).delete()  # trainers, students and everything hanging off them
        Course.objects.all().delete()
        for model in (Offer, Product, Event, Store, CategoryAffinity):
            model.objects.all().delete()

    # --- helpers ---------------------------------------------------------------

    def _bulk(self, model, total: int, build, *, keep: bool = False) -> list:
        """Create ``total`` rows of ``model`` from ``build(i)``, in batches.

        Returns the created rows only with ``keep`` (a million products would
        otherwise stay in memory for nothing).
        """
        created: list = []
        with tqdm(
            total=total, desc=model._meta.verbose_name_plural, disable=not self.progress
        ) as bar:
            for start in range(0, total, BATCH_SIZE):
                batch = [build(i) for i in range(start, min(start + BATCH_SIZE, total))]
                with transaction.atomic():
                    rows = model.objects.bulk_create(batch)
                if keep:
                    created += rows
                bar.update(len(batch))
        return created

    def _name(self, words: int = 2) -> str:
        return " ".join(self.rng.choice(self.words) for _ in range(words))

    def _image(self, kind: str, i: int) -> str:
        return f"https://images.example.com/{kind}/{i}.jpg"

    def _place(self) -> tuple[str, float, float]:
        city, lng, lat = self.rng.choice(CITIES)
        return city, lng + self.rng.uniform(-0.2, 0.2), lat + self.rng.uniform(-0.2, 0.2)

    def _stores(self, total: int) -> list[Store]:
        rng = self.rng

        def build(i: int) -> Store:
            city, lng, lat = self._place()
            return Store(
                name=f"{rng.choice(self.companies)} {self._name(1)}",
                logo=self._image("logos", i),
                image=self._image("stores", i),
                rating=_money(rng, 2.5, 5.0),
                cashback=_money(rng, 0, 15),
                category=rng.choice(CATEGORIES),
                address=f"{rng.randint(1, 999)} {self._name(1)} Road",
                city=city,
                latitude=lat,
                longitude=lng,
                tags=rng.sample(CATEGORIES, 2),
                featured=rng.random() < 0.2,
                views=rng.randint(0, 100_000),
                created_at=self.now - timedelta(days=rng.randint(0, 900)),
            )

        return self._bulk(Store, total, build, keep=True)

    def _products(self, total: int, stores: list[Store]) -> None:
        rng = self.rng

        def build(i: int) -> Product:
            price = _money(rng, 5, 2_000)
            return Product(
                name=self._name(3),
                brand=rng.choice(self.companies),
                image=self._image("products", i),
                price=price,
                original_price=(price * Decimal("1.25")).quantize(Decimal("0.01")),
                category=rng.choice(CATEGORIES),
                rating=_money(rng, 1, 5),
                cashback=_money(rng, 0, 20),
                stock=0 if rng.random() < 0.1 else rng.randint(1, 500),
                store=rng.choice(stores) if stores else None,
                featured=rng.random() < 0.05,
                is_active=rng.random() < 0.97,
                views=int(rng.paretovariate(1.2) * 100),
                recommendation_score=round(rng.random(), 4),
                created_at=self.now - timedelta(minutes=rng.randint(0, 525_600)),
            )

        self._bulk(Product, total, build)

    def _events(self, total: int) -> None:
        rng = self.rng

        def build(i: int) -> Event:
            city, lng, lat = self._place()
            return Event(
                title=f"{self._name(2)} {rng.choice(['Festival', 'Meetup', 'Expo', 'Live'])}",
                subtitle=self._name(4),
                image=self._image("events", i),
                price=_money(rng, 0, 200),
                venue=f"{self._name(1)} Hall",
                city=city,
                latitude=lat,
                longitude=lng,
                # Mostly future events, a few past ones the homepage must never show.
                starts_at=self.now + timedelta(hours=rng.randint(-240, 24 * 120)),
                category=rng.choice(CATEGORIES),
                organizer=rng.choice(self.companies),
                featured=rng.random() < 0.3,
                views=rng.randint(0, 50_000),
            )

        self._bulk(Event, total, build)

    def _offers(self, total: int, stores: list[Store]) -> None:
        if not stores:
            return
        rng = self.rng

        def build(i: int) -> Offer:
            original = _money(rng, 10, 1_000)
            discounted = (original * Decimal(rng.uniform(0.4, 0.95))).quantize(Decimal("0.01"))
            valid_until = self.now + timedelta(hours=rng.randint(-72, 24 * 60))
            flash = rng.random() < 0.15
            return Offer(
                title=f"{rng.randint(10, 70)}% off {self._name(2)}",
                subtitle=self._name(4),
                image=self._image("offers", i),
                original_price=original,
                discounted_price=discounted,
                cashback_percentage=_money(rng, 0, 25),
                valid_until=valid_until,
                category=rng.choice(CATEGORIES),
                store=rng.choice(stores),
                featured=rng.random() < 0.3,
                flash_sale_active=flash,
                flash_sale_price=(discounted * Decimal("0.8")).quantize(Decimal("0.01"))
                if flash
                else None,
                flash_sale_ends_at=min(valid_until, self.now + timedelta(hours=rng.randint(1, 48)))
                if flash
                else None,
                flash_sale_stock=rng.randint(5, 500) if flash else None,
                views=rng.randint(0, 20_000),
                created_at=self.now - timedelta(minutes=rng.randint(0, 100_000)),
            )

        self._bulk(Offer, total, build)

    def _users(self, total: int) -> None:
        User = get_user_model()  # noqa: N806
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
        )
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()
        Token.objects.get_or_create(user=admin)
        rng = self.rng
        existing = set(
            User.objects.filter(username__startswith="shopper").values_list("username", flat=True)
        )
        new_users = [
            User(username=f"shopper{i}", email=f"shopper{i}@example.com")
            for i in range(1, total + 1)
            if f"shopper{i}" not in existing
        ]
        for user in new_users:
            user.set_unusable_password()
        User.objects.bulk_create(new_users, batch_size=BATCH_SIZE)
        shoppers = list(User.objects.filter(username__startswith="shopper"))
        Token.objects.bulk_create(
            [
                Token(user=u, key=Token.generate_key())
                for u in shoppers
                if not Token.objects.filter(user=u).exists()
            ]
        )
        affinities = [
            CategoryAffinity(user=u, category=c, score=round(rng.uniform(0.1, 1.0), 3))
            for u in shoppers
            for c in rng.sample(CATEGORIES, 3)
        ]
        CategoryAffinity.objects.bulk_create(
            affinities, ignore_conflicts=True, batch_size=BATCH_SIZE
        )
