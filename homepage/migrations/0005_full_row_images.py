from django.db import migrations

from caching.capture import full_row_images


class Migration(migrations.Migration):
    """Old rows in the WAL, for the change listener (``manage.py cache listen``)."""

    dependencies = [("homepage", "0004_seed_collection_names")]

    operations = [
        full_row_images("homepage", ["product", "store", "event", "offer", "categoryaffinity"])
    ]
