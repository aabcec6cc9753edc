"""Demo data for the storefront: stores, products, events, offers, shoppers' affinities.

Fast on purpose: names come from small pools made once with Faker (by the
``seed_demo`` command), rows are built in memory and written with
``bulk_create`` in batches, so a million products take minutes on PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connections, models, router, transaction
from tqdm import tqdm

from caching.tags import invalidate_on_commit

from .models import CategoryAffinity, Event, Offer, Product, Store
from .storage import written_on_mongodb

BATCH_SIZE = 5_000
CATEGORIES = [
    "electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery",
    "travel", "health", "automotive", "music",
]  # fmt: skip
CITIES = [  # name, longitude, latitude
    ("Bengaluru", 77.5946, 12.9716),
    ("Mumbai", 72.8777, 19.0760),
    ("Delhi", 77.1025, 28.7041),
    ("London", -0.1276, 51.5072),
    ("New York", -74.0060, 40.7128),
    ("Berlin", 13.4050, 52.5200),
]


@dataclass
class StorefrontCounts:
    products: int
    stores: int
    events: int
    offers: int


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(f"{rng.uniform(low, high):.2f}")


def has_storefront_data() -> bool:
    """True when any product exists."""
    return Product.objects.exists()


def clear_storefront() -> None:
    """Delete every storefront row, in one statement per table, and invalidate once.

    ``QuerySet.delete()`` would load every row to send its delete signal: at a
    million products that is minutes and gigabytes for one invalidation.
    """
    for model in (Offer, Product, Event, Store, CategoryAffinity):
        conn: Any = connections[router.db_for_write(model)]
        if written_on_mongodb(model):
            conn.get_collection(model._meta.db_table).delete_many({})
            continue
        with conn.cursor() as cursor:
            cursor.execute(f'DELETE FROM "{model._meta.db_table}"')  # noqa: S608  (model tables)
    invalidate_on_commit([model.cache_tag for model in (Offer, Product, Event, Store)])


class StorefrontSeeder:
    """Builds the storefront's rows from word pools and one random generator."""

    def __init__(
        self,
        *,
        rng: random.Random,
        now: datetime,
        words: list[str],
        companies: list[str],
        progress: bool = True,
    ) -> None:
        self.rng, self.now, self.words, self.companies = rng, now, words, companies
        self.progress = progress

    def seed(self, counts: StorefrontCounts, shoppers: list) -> None:
        """Create the storefront, then each shopper's category affinities."""
        stores = self._stores(counts.stores)
        self._products(counts.products, stores)
        self._events(counts.events)
        self._offers(counts.offers, stores)
        self._affinities(shoppers)

    def _bulk(
        self, model: type[models.Model], total: int, build: Callable[[int], models.Model],
        *, keep: bool = False,
    ) -> list:  # fmt: skip
        """Create ``total`` rows of ``model`` from ``build(i)``, in batches.

        Returns the created rows only with ``keep`` (a million products would
        otherwise stay in memory for nothing).
        """
        created: list = []
        with tqdm(
            total=total, desc=str(model._meta.verbose_name_plural), disable=not self.progress
        ) as bar:
            for start in range(0, total, BATCH_SIZE):
                batch = [build(i) for i in range(start, min(start + BATCH_SIZE, total))]
                with transaction.atomic():
                    rows = model._default_manager.bulk_create(batch)
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

    def _affinities(self, shoppers: list) -> None:
        rng = self.rng
        # Shoppers seeded before keep theirs (no ignore_conflicts: MongoDB has none).
        known = set(
            CategoryAffinity.objects.filter(user_id__in=[u.pk for u in shoppers]).values_list(
                "user_id", "category"
            )
        )
        affinities = [
            CategoryAffinity(user=u, category=c, score=round(rng.uniform(0.1, 1.0), 3))
            for u in shoppers
            for c in rng.sample(CATEGORIES, 3)
            if (u.pk, c) not in known
        ]
        CategoryAffinity.objects.bulk_create(affinities, batch_size=BATCH_SIZE)
