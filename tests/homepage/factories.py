"""factory-boy factories for the storefront models."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from homepage.models import CategoryAffinity, Event, Offer, Product, Store


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    name = factory.Faker("company")
    logo = factory.Sequence(lambda n: f"https://images.example.com/logos/{n}.jpg")
    image = factory.Sequence(lambda n: f"https://images.example.com/stores/{n}.jpg")
    rating = Decimal("4.00")
    cashback = Decimal("5.00")
    category = "fashion"
    address = factory.Faker("street_address")
    city = "Bengaluru"
    latitude = 12.9716
    longitude = 77.5946
    tags = factory.LazyFunction(lambda: ["fashion"])
    featured = True
    is_active = True
    views = 100


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Faker("catch_phrase")
    brand = factory.Faker("company")
    image = factory.Sequence(lambda n: f"https://images.example.com/products/{n}.jpg")
    price = Decimal("19.99")
    original_price = Decimal("24.99")
    category = "electronics"
    rating = Decimal("4.20")
    cashback = Decimal("2.50")
    stock = 10
    featured = True
    is_active = True
    views = 100
    recommendation_score = 0.5


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    title = factory.Faker("sentence", nb_words=3)
    subtitle = factory.Faker("sentence", nb_words=5)
    price = Decimal("10.00")
    venue = "Main Hall"
    city = "Bengaluru"
    latitude = 12.9716
    longitude = 77.5946
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=3))
    category = "music"
    organizer = factory.Faker("company")
    featured = True
    is_active = True
    views = 10


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    title = factory.Faker("sentence", nb_words=3)
    subtitle = factory.Faker("sentence", nb_words=5)
    original_price = Decimal("100.00")
    discounted_price = Decimal("70.00")
    cashback_percentage = Decimal("5.00")
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    category = "fashion"
    store = factory.SubFactory(StoreFactory)
    featured = True
    is_active = True
    views = 5

    class Params:
        flash = factory.Trait(
            flash_sale_active=True,
            flash_sale_price=Decimal("50.00"),
            flash_sale_ends_at=factory.LazyFunction(lambda: timezone.now() + timedelta(hours=6)),
            flash_sale_stock=20,
        )


class CategoryAffinityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CategoryAffinity

    category = "books"
    score = 0.9


def small_catalogue() -> None:
    """A little of everything: four books, one sold out, a past event, a flash sale."""
    now = timezone.now()
    stores = StoreFactory.create_batch(3)
    ProductFactory.create_batch(4, category="books")
    ProductFactory(stock=0)
    EventFactory.create_batch(2)
    EventFactory(starts_at=now - timedelta(hours=1))
    OfferFactory.create_batch(2, store=stores[0])
    OfferFactory(flash=True, store=stores[1])
