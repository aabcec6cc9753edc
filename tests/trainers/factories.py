"""factory-boy factories for trainers, courses, allocations and sessions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from tests.factories import UserFactory
from trainers.models import (
    Allocation,
    Course,
    Session,
    Trainer,
    TrainerDocument,
    TrainerPerformance,
)


class TrainerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trainer
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    name = factory.Faker("name")
    email = factory.Faker("email")
    hourly_rate = Decimal("40.00")
    city = "Bengaluru"
    latitude = 12.97
    longitude = 77.59
    specialties = factory.LazyFunction(lambda: ["yoga"])
    performance = factory.RelatedFactory(
        "tests.trainers.factories.TrainerPerformanceFactory", factory_related_name="trainer"
    )


class TrainerPerformanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainerPerformance

    trainer = factory.SubFactory(TrainerFactory, performance=None)


class TrainerDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainerDocument

    trainer = factory.SubFactory(TrainerFactory)
    kind = "certificate"
    title = "Certificate"
    url = factory.Sequence(lambda n: f"https://docs.example.com/{n}.pdf")


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    title = factory.Sequence(lambda n: f"Course {n}")
    total_sessions = 10
    session_minutes = 60


class AllocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Allocation

    trainer = factory.SubFactory(TrainerFactory)
    student = factory.SubFactory("tests.students.factories.StudentFactory")
    course = factory.SubFactory(CourseFactory)
    status = Allocation.Status.APPROVED
    sessions_total = 10
    approved_at = factory.LazyFunction(timezone.now)


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    allocation = factory.SubFactory(AllocationFactory)
    trainer = factory.SelfAttribute("allocation.trainer")
    student = factory.SelfAttribute("allocation.student")
    scheduled_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    duration_minutes = 60


def allocation_with_sessions(count: int) -> Allocation:
    """An approved allocation with ``count`` scheduled sessions, an hour apart from tomorrow."""
    allocation = AllocationFactory(sessions_total=count + 10)
    start = timezone.now() + timedelta(days=1)
    Session.objects.bulk_create(
        [
            Session(allocation=allocation, trainer=allocation.trainer, student=allocation.student,
                    scheduled_at=start + timedelta(hours=i))
            for i in range(count)
        ]
    )  # fmt: skip
    return allocation
