from django.db import migrations

from caching.capture import full_row_images


class Migration(migrations.Migration):
    """Old rows in the WAL, for the change listener (``manage.py cache listen``)."""

    dependencies = [("students", "0004_student_moved_to_trainers")]

    operations = [full_row_images("students", ["studentprogress", "achievement", "courseprogress"])]
