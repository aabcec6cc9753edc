# The Student model moves here from the students app (state only: the table
# students_student stays where it is, and so do the foreign keys to it).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('trainers', '0002_alter_trainerperformance_options'),
        ('students', '0003_alter_courseprogress_options_and_more'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Student',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('email', models.EmailField(blank=True, max_length=254)),
                        ('phone', models.CharField(blank=True, max_length=40)),
                        ('avatar', models.URLField(blank=True, max_length=500)),
                        ('level', models.CharField(default='beginner', max_length=30)),
                        ('goals', models.TextField(blank=True)),
                        ('joined_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='student', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={'db_table': 'students_student'},
                ),
                migrations.AlterField(
                    model_name='allocation',
                    name='student',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='trainers.student'),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='student',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='sessions', to='trainers.student'),
                ),
            ],
            database_operations=[],
        ),
    ]
