"""Fixtures shared by the aggregation tests."""

from __future__ import annotations

import pytest

from tests.homepage.factories import EventFactory, OfferFactory, ProductFactory, StoreFactory


@pytest.fixture
def storefront() -> None:
    """A small storefront: every homepage section has rows, flash sales included."""
    ProductFactory.create_batch(6, featured=True, category="books")
    ProductFactory.create_batch(3, featured=True, category="toys")
    StoreFactory.create_batch(5)
    EventFactory.create_batch(5)
    OfferFactory.create_batch(3)
    OfferFactory.create_batch(2, flash=True)
