"""The Celery app, configured from Django settings under the ``CELERY_`` namespace."""

import os
from typing import Any

from celery import Celery, bootsteps
from celery.signals import after_task_publish, beat_init, before_task_publish, worker_init
from django_structlog.celery.receivers import CeleryReceiver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")  # as wsgi.py

app = Celery("aggregation_api")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class StructlogWorkerStep(bootsteps.Step):
    """django-structlog's worker step, minus a second set of publish receivers.

    ``django_structlog`` (the Django app) already connects the receivers that
    log ``task_enqueued``; its own worker step connects them again, so every
    task a worker enqueues was logged twice. This step connects the worker-side
    receivers only.
    """

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.receiver = CeleryReceiver()
        self.receiver.connect_worker_signals()
        before_task_publish.disconnect(self.receiver.receiver_before_task_publish)
        after_task_publish.disconnect(self.receiver.receiver_after_task_publish)


app.steps["worker"].add(StructlogWorkerStep)  # task logs carry the request id


@worker_init.connect(dispatch_uid="config.tracing.worker")
@beat_init.connect(dispatch_uid="config.tracing.beat")
def _start_tracing(**kwargs: Any) -> None:
    """Tracing in the worker and beat, when configured (prefork children inherit it)."""
    from config.tracing import setup_tracing

    setup_tracing()
