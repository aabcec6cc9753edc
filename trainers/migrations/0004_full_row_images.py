from django.db import migrations

from caching.capture import full_row_images


class Migration(migrations.Migration):
    """Old rows in the WAL, for the change listener (``manage.py cache listen``)."""

    dependencies = [("trainers", "0003_student")]

    operations = [
        full_row_images(
            "trainers",
            ["trainer", "student", "trainerperformance", "trainerdocument", "course",
             "allocation", "session", "payoutclaim", "payoutclaimsession"],
        )  # fmt: skip
    ]
