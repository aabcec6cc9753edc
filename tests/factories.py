"""The one factory of users every test uses (trainers, students and shoppers are users)."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

PASSWORD = "pw-person-1"


class UserFactory(factory.django.DjangoModelFactory):
    """A user who can sign in (with ``PASSWORD`` unless ``password`` is given).

    ``UserFactory(staff=True)`` is a staff superuser, as the admin's users are.
    """

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    class Params:
        staff = factory.Trait(is_staff=True, is_superuser=True)

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)  # hashed, given ones too
