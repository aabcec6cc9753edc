"""Settings shared by every environment, all read from environment variables.

Defaults make the embedded mode work with nothing set: SQLite, an in-process
cache and Celery tasks run eagerly. Setting ``DATABASE_URL`` / ``REDIS_URL``
switches to PostgreSQL / Redis without touching code.
"""

import datetime
import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.logging import LogFormat, logging_config
from config.redis import RedisSettings, cache_location_and_options

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()


def _date_or_none(value: str) -> datetime.date | None:
    """An ISO date from the environment (``2026-12-01``), or None when empty."""
    return datetime.date.fromisoformat(value) if value else None


# --- Django core ---------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-embedded-default-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "django_structlog",
    "health_check",
    "api",
    "aggregation",
    "caching",
    "homepage",
    "trainers",
    "students",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "api.compression.RefusableGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
CSRF_FAILURE_VIEW = "api.errors.csrf_failure_view"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------
# DB_POOL_SIZE bounds the psycopg connection pool per process (PostgreSQL only).
DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=50)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASE_ROUTERS: list[str] = []
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])  # PostgreSQL only
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a pool check that costs no round trip (its module says how).
    DATABASES["default"]["ENGINE"] = "aggregation.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": DB_POOL_SIZE,
        # Below QUERY_TIMEOUT: an unreachable database is reported as such, fast.
        "timeout": env.float("DB_POOL_TIMEOUT_S", default=2.0),
    }
    # The pool checks a connection before lending it, without a round trip
    # (aggregation/postgresql): after a database restart it hands out no dead
    # connection. Django's own check (an empty query per checkout) stays off.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    # Prepared statements: a query run again on a connection is planned once,
    # not every time (the sessions query of a bootstrap joins four tables and
    # took longer to plan than to run). They need server-side parameter
    # binding; 0 turns both off, for a pooler that cannot keep them (PgBouncer
    # in transaction mode before 1.21).
    DB_PREPARE_THRESHOLD = env.int("DB_PREPARE_THRESHOLD", default=5)
    if DB_PREPARE_THRESHOLD > 0:
        DATABASES["default"]["OPTIONS"].update(
            server_side_binding=True, prepare_threshold=DB_PREPARE_THRESHOLD
        )
    # Read replicas (PostgreSQL streaming replication) for the sections' reads:
    # same options as the primary; never migrated, never a test database.
    for _number, _url in enumerate(DATABASE_REPLICA_URLS):
        DATABASES[f"replica{_number}"] = {
            **env.db_url_config(_url),
            "ENGINE": "aggregation.postgresql",
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "OPTIONS": {**DATABASES["default"]["OPTIONS"]},
            "TEST": {"MIRROR": "default"},
        }
    if len(DATABASES) > 1:
        DATABASE_ROUTERS.append("aggregation.replicas.ReplicaRouter")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Section threads read while a writer may be active: WAL and a busy timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The storefront (products, stores, events, offers, category affinities) in
# MongoDB, through django-mongodb-backend; everything else stays on DATABASE_URL.
# Unset: the storefront lives on DATABASE_URL too.
STOREFRONT_DATABASE_URL = env.str("STOREFRONT_DATABASE_URL", default="")
STOREFRONT_ON_MONGODB = bool(STOREFRONT_DATABASE_URL)
if STOREFRONT_ON_MONGODB:
    from pymongo.uri_parser import parse_uri as _parse_mongodb_uri

    DATABASES["storefront"] = {
        "ENGINE": "django_mongodb_backend",
        "HOST": STOREFRONT_DATABASE_URL,
        "NAME": _parse_mongodb_uri(STOREFRONT_DATABASE_URL)["database"] or "storefront",
        # Unreachable is reported fast (below QUERY_TIMEOUT), as with PostgreSQL's pool.
        "OPTIONS": {
            "serverSelectionTimeoutMS": env.int("STOREFRONT_SELECTION_TIMEOUT_MS", default=2_000),
            "connectTimeoutMS": 2_000,
            "maxPoolSize": DB_POOL_SIZE,
            "appname": "aggregation-api",
        },
    }
    # The storefront's migrations for MongoDB (ObjectId keys, partial indexes as
    # partialFilterExpression); homepage/migrations stays the relational schema.
    MIGRATION_MODULES = {"homepage": "homepage.mongodb_migrations"}
    DATABASE_ROUTERS.insert(0, "homepage.storage.StorefrontRouter")

# --- Cache ---------------------------------------------------------------------
# One Redis (REDIS_URL), a primary through Sentinel (REDIS_SENTINELS,
# REDIS_SENTINEL_MASTER) or a Redis Cluster (REDIS_CLUSTER_NODES); never two.
# None: the in-process cache (embedded mode; production refuses it).
REDIS_URL = env("REDIS_URL", default="")
REDIS = RedisSettings(
    url=REDIS_URL,
    sentinels=tuple(env.list("REDIS_SENTINELS", default=[])),
    sentinel_master=env.str("REDIS_SENTINEL_MASTER", default=""),
    sentinel_password=env.str("REDIS_SENTINEL_PASSWORD", default=""),
    cluster_nodes=tuple(env.list("REDIS_CLUSTER_NODES", default=[])),
    password=env.str("REDIS_PASSWORD", default=""),
    db=env.int("REDIS_DB", default=0),
)
REDIS_MODE = REDIS.mode
# Replicas that must have an invalidation before it counts as done (WAIT), so a
# failover cannot bring back a generation older than one a write returned
# after; 0 on one server. Bounded by REDIS_WAIT_TIMEOUT_MS.
REDIS_WAIT_REPLICAS = env.int(
    "REDIS_WAIT_REPLICAS", default=1 if REDIS_MODE in ("sentinel", "cluster") else 0
)
REDIS_WAIT_TIMEOUT_MS = env.int("REDIS_WAIT_TIMEOUT_MS", default=500)
# Hash-tagged shards of the key space (Redis Cluster): an entry and its tags'
# generation copies share a slot; 1 = no hash tags (caching/keys.py).
CACHE_SHARDS = env.int("CACHE_SHARDS", default=16 if REDIS_MODE == "cluster" else 1)
if REDIS_MODE != "none":
    _location, _options = cache_location_and_options(
        REDIS,
        connect_timeout=env.float("REDIS_CONNECT_TIMEOUT_S", default=0.25),
        socket_timeout=env.float("REDIS_SOCKET_TIMEOUT_S", default=0.25),
    )
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _location,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="agg"),
            "OPTIONS": _options,
        }
    }
    if CACHE_SHARDS > 1:  # every key in the hash slot of its shard
        CACHES["default"]["KEY_FUNCTION"] = "caching.keys.sharded_key_function"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "aggregation-api",
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }

# --- Aggregation engine (seed 004 appendix C) -----------------------------------
# Units: the specification's four names keep its units (CACHE_TTL in seconds;
# CACHE_WARMING_INTERVAL, QUERY_TIMEOUT, REQUEST_TIMEOUT in milliseconds); every
# other duration names its unit in its name (_S seconds, _MS milliseconds).
CACHE_TTL = env.int("CACHE_TTL", default=300)  # seconds: hard TTL of full responses
CACHE_SOFT_TTL_S = env.int("CACHE_SOFT_TTL_S", default=180)  # seconds: served fresh until then
CACHE_SECTION_TTL_S = env.int("CACHE_SECTION_TTL_S", default=600)  # seconds: section entries
CACHE_PARTIAL_TTL_S = env.int("CACHE_PARTIAL_TTL_S", default=15)  # seconds: partial failures
CACHE_STALE_IF_ERROR_S = env.int("CACHE_STALE_IF_ERROR_S", default=3600)  # seconds of grace
CACHE_L1_MAX_ENTRIES = env.int("CACHE_L1_MAX_ENTRIES", default=1000)  # in-process entries
CACHE_REDIS_RETRY_AFTER_S = env.float("CACHE_REDIS_RETRY_AFTER_S", default=5.0)  # breaker, s
CACHE_REWARM_DEBOUNCE_S = env.float("CACHE_REWARM_DEBOUNCE_S", default=2.0)  # seconds
CACHE_WARMING_INTERVAL = env.int("CACHE_WARMING_INTERVAL", default=240_000)  # ms
QUERY_TIMEOUT = env.int("QUERY_TIMEOUT", default=5_000)  # ms, per section
REQUEST_TIMEOUT = env.int("REQUEST_TIMEOUT", default=10_000)  # ms, whole request
# Check every use of a compiled query shape against a fresh build (aggregation/shapes.py).
QUERY_SHAPES_VERIFY = env.bool("QUERY_SHAPES_VERIFY", default=False)
AGGREGATION_MAX_WORKERS = env.int("AGGREGATION_MAX_WORKERS", default=16)
# Sections in the thread pool (true) or one after another on the request thread
# (false). Measured on two cores: see README "Performance" for the choice.
SECTIONS_IN_PARALLEL = env.bool("SECTIONS_IN_PARALLEL", default=False)
# A replica more than REPLICA_MAX_LAG_S seconds behind, or failing, is left alone
# for REPLICA_RETRY_AFTER_S seconds (its reads go to the primary).
REPLICA_MAX_LAG_S = env.float("REPLICA_MAX_LAG_S", default=5.0)
REPLICA_RETRY_AFTER_S = env.float("REPLICA_RETRY_AFTER_S", default=5.0)
ENABLE_BATCH_ENDPOINT = env.bool("ENABLE_BATCH_ENDPOINT", default=True)
ENABLE_CACHE_WARMING = env.bool("ENABLE_CACHE_WARMING", default=True)
# The consistency monitor: every CACHE_VERIFY_INTERVAL_S seconds, Celery beat
# compares up to CACHE_VERIFY_SAMPLE cached entries with the database.
ENABLE_CONSISTENCY_MONITOR = env.bool("ENABLE_CONSISTENCY_MONITOR", default=True)
CACHE_VERIFY_INTERVAL_S = env.int("CACHE_VERIFY_INTERVAL_S", default=300)  # seconds
CACHE_VERIFY_SAMPLE = env.int("CACHE_VERIFY_SAMPLE", default=50)  # entries per run
# The window of the consistency rate (/metrics, the cache page), in seconds.
CACHE_CONSISTENCY_WINDOW_S = env.int("CACHE_CONSISTENCY_WINDOW_S", default=86_400)
ENABLE_STALE_WHILE_REVALIDATE = env.bool("ENABLE_STALE_WHILE_REVALIDATE", default=True)
# Legacy individual endpoints: a date marks them deprecated (Deprecation, Sunset
# and Link headers; deprecated in the schema); Sunset defaults to 90 days later.
LEGACY_DEPRECATED_SINCE = _date_or_none(env.str("LEGACY_DEPRECATED_SINCE", default=""))
LEGACY_SUNSET = _date_or_none(env.str("LEGACY_SUNSET", default=""))
CDN_MAX_AGE_S = env.int("CDN_MAX_AGE_S", default=60)  # s-maxage of anonymous responses
CDN_STALE_WHILE_REVALIDATE_S = env.int("CDN_STALE_WHILE_REVALIDATE_S", default=120)  # seconds
# Shared caches in front (Varnish, a CDN): they get each public response's tags
# in EDGE_TAG_HEADER ("" = none) and a soft purge per commit that bumps a tag.
EDGE_TAG_HEADER = env.str("EDGE_TAG_HEADER", default="xkey")
EDGE_PURGE_URLS = env.list("EDGE_PURGE_URLS", default=[])  # empty: no purges
EDGE_PURGE_SECRET = env.str("EDGE_PURGE_SECRET", default="")
EDGE_PURGE_TIMEOUT_MS = env.int("EDGE_PURGE_TIMEOUT_MS", default=100)  # ms a write waits, all edges
EDGE_PURGE_RETRY_FOR_S = env.int("EDGE_PURGE_RETRY_FOR_S", default=300)  # s of retries (Celery)
if EDGE_PURGE_URLS and not EDGE_PURGE_SECRET:
    raise ImproperlyConfigured("EDGE_PURGE_URLS needs EDGE_PURGE_SECRET (the edge checks it).")
# How long an edge may serve a stale public response while the service is down.
# The change listener (manage.py cache listen): every writer's changes become tag
# bumps. On, in-app transactions announce the tags they bump (so it skips them)
# and readiness reports it; set it alike on the web, worker and listener.
ENABLE_CACHE_LISTENER = env.bool("ENABLE_CACHE_LISTENER", default=False)
CACHE_LISTENER_SLOT = env.str("CACHE_LISTENER_SLOT", default="aggregation_cache")  # + publication
CACHE_LISTENER_DATABASE_URL = env.str("CACHE_LISTENER_DATABASE_URL", default="")  # "": DATABASE_URL
CACHE_LISTENER_MAX_LAG_S = env.float("CACHE_LISTENER_MAX_LAG_S", default=10.0)  # seconds
CDN_STALE_IF_ERROR_S = env.int("CDN_STALE_IF_ERROR_S", default=3600)  # seconds
BOOTSTRAP_WARM_LIMIT = env.int("BOOTSTRAP_WARM_LIMIT", default=50)  # per kind, per warm run
HOMEPAGE_LOCATION_RADIUS_KM = env.float("HOMEPAGE_LOCATION_RADIUS_KM", default=50.0)
API_VERSION = "1.0.0"
# Content codings of batch responses, best first; each is compressed once per
# stored body, so a hit never compresses a section (docs/api.md, "Encodings").
RESPONSE_ENCODINGS = tuple(
    e.strip().lower() for e in env.list("RESPONSE_ENCODINGS", default=["br", "zstd", "gzip"])
)
if not set(RESPONSE_ENCODINGS) <= {"br", "zstd", "gzip"}:
    raise ImproperlyConfigured("RESPONSE_ENCODINGS lists only br, zstd and gzip.")
RESPONSE_BROTLI_QUALITY = env.int("RESPONSE_BROTLI_QUALITY", default=6)  # 0-11
RESPONSE_ZSTD_LEVEL = env.int("RESPONSE_ZSTD_LEVEL", default=6)  # 1-22
# Bootstraps compressed against the copy a client holds (RFC 9842 dcz,
# aggregation/dictionaries.py): a body sent to a client taking dcz is kept this long.
DELTA_DICTIONARIES = env.bool("DELTA_DICTIONARIES", default=True)
DELTA_DICTIONARY_TTL_S = env.int("DELTA_DICTIONARY_TTL_S", default=86_400)  # seconds

TOKEN_CACHE_TTL_S = env.int("TOKEN_CACHE_TTL_S", default=300)  # seconds a token lookup is kept

# --- Rate limits (django-ratelimit counters in the default cache) -------------
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_USE_CACHE = "default"
RATE_LIMIT_READS = env("RATE_LIMIT_READS", default="60/m")  # per user, or per IP if anonymous
RATE_LIMIT_FRESH = env("RATE_LIMIT_FRESH", default="10/m")  # fresh=true reads, in addition
RATE_LIMIT_WRITES = env("RATE_LIMIT_WRITES", default="60/m")  # mutations
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)  # proxies in front of us

# --- Celery --------------------------------------------------------------------
# The broker is REDIS_URL's server by default; with Sentinel or Cluster it is a
# separate Redis or RabbitMQ named by CELERY_BROKER_URL (production requires it).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# No broker configured: run tasks in-process so the embedded mode needs no worker.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 1  # a down broker must not stall a request
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- REST framework and OpenAPI ------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["drf_orjson_renderer.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "api.docs.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [],  # each API view names its own (api.ratelimits)
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aggregation API",
    "DESCRIPTION": (
        "Batch homepage and bootstrap endpoints that answer one request with many "
        "independent sections, run concurrently and cached in Redis."
    ),
    "VERSION": API_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "/api/redoc-assets",  # the sidecar bundle, served offline (api/docs.py)
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AllocationStatusEnum": "trainers.models.Allocation.Status",
        "PayoutClaimStatusEnum": "trainers.models.PayoutClaim.Status",
        "SessionStatusEnum": "trainers.models.Session.Status",
        "DocumentStatusEnum": "trainers.models.TrainerDocument.Status",
        "CourseProgressStatusEnum": "students.models.CourseProgress.Status",
    },
}

# --- Auth, i18n, static --------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# WhiteNoise serves admin and API-docs assets under gunicorn too; without a
# collectstatic run (embedded mode, tests) it serves them from the apps directly.
WHITENOISE_USE_FINDERS = True

# Who may scrape /metrics (by trusted client IP): private networks by default.
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in env.list(
        "METRICS_ALLOWED_NETWORKS",
        default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    )
]

# --- Tracing (OpenTelemetry; config/tracing.py) ---------------------------------
# Off unless OTEL_TRACES_EXPORTER names an exporter: otlp (OTLP over HTTP to
# OTEL_EXPORTER_OTLP_ENDPOINT) or console; "none" is off too.
OTEL_TRACES_EXPORTER = env.str("OTEL_TRACES_EXPORTER", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="aggregation-api")
OTEL_EXPORTER_OTLP_ENDPOINT = env.str(
    "OTEL_EXPORTER_OTLP_ENDPOINT", default="http://127.0.0.1:4318"
)
# Share of new traces kept (a request arriving inside a sampled trace is always kept).
OTEL_TRACES_SAMPLER_ARG = env.float("OTEL_TRACES_SAMPLER_ARG", default=1.0)
if not 0.0 <= OTEL_TRACES_SAMPLER_ARG <= 1.0:
    raise ImproperlyConfigured("OTEL_TRACES_SAMPLER_ARG is a ratio between 0 and 1.")

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT: LogFormat = env("LOG_FORMAT", default="json")  # json, or console for humans
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True  # checked and bound by api.request_logs
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False  # bound from the trusted client IP instead
DJANGO_STRUCTLOG_CELERY_ENABLED = True  # the request id travels with the tasks it causes
