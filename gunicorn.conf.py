"""gunicorn settings (gunicorn reads this file from the working directory by itself).

Everything is configurable from the environment; the defaults suit the two-core
full stack of ``./scripts/fullstack``.
"""

import os

bind = f"{os.environ.get('WEB_HOST', '127.0.0.1')}:{os.environ.get('WEB_PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# Request lines up to 8 KB; longer ones get gunicorn's own 400 (the one answer
# outside the JSON envelope: it never reaches Django).
limit_request_line = 8190
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None  # empty: no access log
wsgi_app = "config.wsgi:application"
