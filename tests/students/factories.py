"""factory-boy factories for students and their progress."""

from __future__ import annotations

import factory

from students.models import StudentProgress
from tests.factories import UserFactory
from trainers.models import Student


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Student
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    name = factory.Faker("name")
    email = factory.Faker("email")
    progress = factory.RelatedFactory(
        "tests.students.factories.StudentProgressFactory", factory_related_name="student"
    )


class StudentProgressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudentProgress

    student = factory.SubFactory(StudentFactory, progress=None)
