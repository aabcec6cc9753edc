# The Student model now lives in the trainers app (see trainers 0003): state
# only, plus its content type, so admin history and permissions follow it.

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    content_type = apps.get_model('contenttypes', 'ContentType')
    if not content_type.objects.filter(app_label='trainers', model='student').exists():
        content_type.objects.filter(app_label='students', model='student').update(app_label='trainers')


def restore_content_type(apps, schema_editor):
    content_type = apps.get_model('contenttypes', 'ContentType')
    if not content_type.objects.filter(app_label='students', model='student').exists():
        content_type.objects.filter(app_label='trainers', model='student').update(app_label='students')


class Migration(migrations.Migration):

    dependencies = [
        ('students', '0003_alter_courseprogress_options_and_more'),
        ('trainers', '0003_student'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='studentprogress',
                    name='student',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='progress', to='trainers.student'),
                ),
                migrations.AlterField(
                    model_name='achievement',
                    name='student',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='achievements', to='trainers.student'),
                ),
                migrations.AlterField(
                    model_name='courseprogress',
                    name='student',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='course_progress', to='trainers.student'),
                ),
                migrations.DeleteModel(name='Student'),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, restore_content_type),
    ]
