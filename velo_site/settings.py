"""Django settings for Velo: the one place that reads the environment."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from dlq.redaction import DEFAULT_REDACT_FIELDS
from errors.context import from_environ
from velo_site import __version__

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Development values are only handed out while DEBUG is on; production must say,
# and a key anyone can read in this repository (or Django's startproject prefix) is no key.
_DEV_SECRET_KEY = "velo-dev-only-insecure-key"
_PUBLIC_SECRET_KEYS = {_DEV_SECRET_KEY, "velo-test-only-insecure-key"}
SECRET_KEY = (
    env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY) if DEBUG else env.str("DJANGO_SECRET_KEY")
)
if not DEBUG and (
    not SECRET_KEY or SECRET_KEY in _PUBLIC_SECRET_KEYS or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is empty or a development value; set a secret of your own, e.g. "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "axes",
    "csp",
    # errors before dlq: dlq.admin registers the error groups' admin with its actions.
    "errors",
    "dlq",
    "demo",
]

MIDDLEWARE = [
    "velo_site.request_guard.MalformedRequestMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /static/ from STATIC_ROOT under gunicorn too (collectstatic first): right after
    # SecurityMiddleware, before anything that would touch a session or the database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dlq.api.middleware.ApiErrorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "velo_site.urls"
WSGI_APPLICATION = "velo_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "velo_site" / "templates"],
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


_PROMETHEUS_BACKENDS = frozenset({"postgresql", "sqlite3"})


def _database(url):
    """A Django DATABASES entry from a URL, with the SQLite tuning the embedded default needs."""
    config = environ.Env.db_url_config(url)
    vendor = config["ENGINE"].rpartition(".")[2]
    # django-prometheus' wrappers of Django's own backends: the django_db_* metrics.
    if config["ENGINE"] == f"django.db.backends.{vendor}" and vendor in _PROMETHEUS_BACKENDS:
        config["ENGINE"] = f"django_prometheus.db.backends.{vendor}"
    if vendor == "sqlite3":
        name = Path(config["NAME"])
        if not name.is_absolute():
            name = BASE_DIR / name
        name.parent.mkdir(parents=True, exist_ok=True)
        config["NAME"] = str(name)
        # Web and worker write at once: WAL lets readers go on, the busy timeout
        # waits for the writer instead of failing, and IMMEDIATE takes the write
        # lock at BEGIN so two writers never deadlock upgrading read locks.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # The test database must be a file: a worker in another process has to see it.
        config["TEST"] = {"NAME": str(name.with_name("test_" + name.name))}
    else:
        config.setdefault("OPTIONS", {})
        config["OPTIONS"].setdefault("connect_timeout", 5)
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": _database(env.str("DATABASE_URL", default="sqlite:///var/velo.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "velo_site" / "static"]
# `manage.py collectstatic --noinput` fills it; WhiteNoise serves it (deploy/README.md).
STATIC_ROOT = Path(env.str("VELO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Outside DEBUG: hashed names (cached for a year by browsers and proxies) and
    # pre-compressed copies; the manifest exists only after collectstatic, so a server
    # started without it answers 500 on every page that links a static file.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Forms (the admin's, the operator pages') are refused over this many bytes (Django's
# default, 2.5 MiB). The API's POST views never use request.body or request.POST: they
# read the body themselves, at most VELO_MAX_BODY_BYTES of it (dlq.api.body.read_body).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# --- HTTPS, proxies and the browser's protections ----------------------------

# VELO_HTTPS=1: Velo is reached over TLS through a proxy that terminates it and
# says so in X-Forwarded-Proto (deploy/). Cookies go over HTTPS only, browsers
# are told to use nothing else (HSTS), and plain HTTP is redirected, except the
# probes and /metrics, which kubelets and Prometheus call inside the network.
VELO_HTTPS = env.bool("VELO_HTTPS", default=False)
# The proxy must set (not pass on) X-Forwarded-Proto, or a client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if VELO_HTTPS else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = VELO_HTTPS
SECURE_SSL_REDIRECT = env.bool("VELO_SSL_REDIRECT", default=VELO_HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^(live|ready|health|metrics)$"]
SECURE_HSTS_SECONDS = env.int("VELO_HSTS_SECONDS", default=31_536_000 if VELO_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("VELO_HSTS_INCLUDE_SUBDOMAINS", default=True)
# The preload list is a promise to every browser that is slow to take back: opt in only.
SECURE_HSTS_PRELOAD = env.bool("VELO_HSTS_PRELOAD", default=False)
# Origins (scheme://host[:port]) whose forms may POST here when they are not this
# host as the proxy passes it on, e.g. a proxy that rewrites Host.
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
USE_X_FORWARDED_HOST = env.bool("DJANGO_USE_X_FORWARDED_HOST", default=False)
# Proxies in front of Velo that append to X-Forwarded-For: the client's address is
# the one the outermost of them saw (velo_site.logins); 0 trusts no header.
VELO_PROXY_COUNT = env.int("VELO_PROXY_COUNT", default=1 if VELO_HTTPS else 0)
# Django's own defaults, said here so no upgrade changes them unseen.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Without preload, Django's deploy check warns that the site cannot be submitted
# to the preload list: a choice made above, not a gap.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Scripts and styles from Velo's own static files only: the admin and the
# operator pages have no inline script. Inline style *attributes* are allowed
# (the bars' widths and the chart swatches' colours are computed server-side);
# <style> elements are not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Logins ----------------------------------------------------------------

# django-axes: after VELO_LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is locked out for VELO_LOGIN_COOLOFF_MINUTES
# (a 429), the right password included; another address or user is not.
AUTHENTICATION_BACKENDS = [
    "velo_site.logins.LoginThrottle",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("VELO_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("VELO_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "velo_site.logins.client_ip"
# Its startup banner on every process and management command is noise.
AXES_VERBOSE = False

# --- Celery -----------------------------------------------------------------

BROKER_DIR = Path(env.str("VELO_BROKER_DIR", default=str(VAR_DIR / "broker")))
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "rejected", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    # kombu's own filesystem transport can hand a consumer a half-written file
    # and kill the worker; Velo's subclass writes whole files and claims by rename.
    CELERY_BROKER_TRANSPORT = "velo_site.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "rejected_folder": str(BROKER_DIR / "rejected"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env.str("VELO_QUEUE", default="velo")
# The beat tick (recovery and dispatch) and the daily purge have a queue and a
# small worker of their own, so they never wait behind batches, requeues or a
# record that hangs (README "Queues").
VELO_CONTROL_QUEUE = env.str("VELO_CONTROL_QUEUE", default="velo-control")
# A worker started without --queues takes both (a small deployment: one
# `celery worker -B`); Procfile.dev and deploy/ give each worker its own.
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(VELO_CONTROL_QUEUE))
CELERY_TASK_ROUTES = {
    "dlq.dispatch_due_batches": {"queue": VELO_CONTROL_QUEUE},
    "dlq.purge_expired": {"queue": VELO_CONTROL_QUEUE},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A batch is acknowledged only when done, and a worker lost mid-batch hands it
# back; the engine's claim makes the second delivery harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process killed mid-task holds its slot this long (Celery waits for a
# result it might have sent first; default 10 s) before its task is given up:
# results live in the database, so there is nothing worth waiting for.
CELERY_WORKER_LOST_WAIT = 1.0
# Celery's Django fixup closes every database connection before and after
# each task unless told to reuse them; a fresh PostgreSQL backend per batch
# cost more CPU than the batch's own queries. velo_site.celery treats a task
# like a request instead: connections live CONN_MAX_AGE, are health-checked
# before each task, and are dropped after a task that raised.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-batches": {
        "task": "dlq.dispatch_due_batches",
        "schedule": env.float("VELO_DISPATCH_INTERVAL", default=1.0),
        # A tick that waited out a worker outage is stale: the next one will do.
        "options": {"expires": 10, "queue": VELO_CONTROL_QUEUE},
    },
    # Retention (dlq.retention): resolved/discarded entries, old occurrences and rollups.
    "purge-expired": {
        "task": "dlq.purge_expired",
        "schedule": crontab(hour=3, minute=0),
        # A purge that waited out a whole day is replaced by the next one.
        "options": {"expires": 12 * 3600, "queue": VELO_CONTROL_QUEUE},
    },
}

# --- Velo -------------------------------------------------------------------

VELO_MAX_BATCH_RECORDS = env.int("VELO_MAX_BATCH_RECORDS", default=10_000)
VELO_MAX_BODY_BYTES = env.int("VELO_MAX_BODY_BYTES", default=10 * 1024 * 1024)
VELO_METRICS_TOKEN = env.str("VELO_METRICS_TOKEN", default="")
# A failure's message and traceback are cut to these many characters where they are
# captured (the traceback keeps its head and its tail); the log shows fewer still.
VELO_MAX_ERROR_MESSAGE_CHARS = env.int("VELO_MAX_ERROR_MESSAGE_CHARS", default=2000)
VELO_MAX_TRACEBACK_CHARS = env.int("VELO_MAX_TRACEBACK_CHARS", default=16 * 1024)
VELO_MAX_LOGGED_MESSAGE_CHARS = env.int("VELO_MAX_LOGGED_MESSAGE_CHARS", default=500)
# A batch attempt (a requeue chunk) logs this many failures of each error group in full,
# then one line per group with the number it did not log (SPEC §4); 0: only those lines.
VELO_LOG_FAILURES_PER_GROUP = env.int("VELO_LOG_FAILURES_PER_GROUP", default=3)
if VELO_LOG_FAILURES_PER_GROUP < 0:
    raise ImproperlyConfigured(
        f"VELO_LOG_FAILURES_PER_GROUP is {VELO_LOG_FAILURES_PER_GROUP}: use 0 or more"
    )
# GET /api/v1/dlq ends a page before the entries' JSON would pass this many bytes.
VELO_API_PAGE_BYTES = env.int("VELO_API_PAGE_BYTES", default=1024 * 1024)
# A claimed batch whose worker stops answering for this long is handed out again.
VELO_BATCH_LEASE_SECONDS = env.float("VELO_BATCH_LEASE_SECONDS", default=300.0)
# Every worker process beats this often; one silent for VELO_WORKER_STALE_SECONDS
# (while another worker kept beating) is dead, and its claims are handed out again.
VELO_WORKER_HEARTBEAT_SECONDS = env.float("VELO_WORKER_HEARTBEAT_SECONDS", default=2.0)
VELO_WORKER_STALE_SECONDS = env.float("VELO_WORKER_STALE_SECONDS", default=10.0)
# A queued batch whose task message has not started after this long is sent again.
VELO_REDISPATCH_AFTER_SECONDS = env.float("VELO_REDISPATCH_AFTER_SECONDS", default=300.0)
# ... but only this long when Velo's queue at the broker is empty (dlq.sweep).
VELO_REDISPATCH_IDLE_SECONDS = env.float("VELO_REDISPATCH_IDLE_SECONDS", default=5.0)
# A batch whose attempts end unrecorded this many times (its worker died, or its
# results could not be stored) is dead-lettered instead of retried forever.
VELO_MAX_LOST_ATTEMPTS = env.int("VELO_MAX_LOST_ATTEMPTS", default=5)
# The hard time limit (prefork workers): a record still running this long after its
# job's record_timeout gets its pool process killed by the worker's watchdog, which
# looks every VELO_WATCHDOG_INTERVAL_SECONDS.
VELO_RECORD_TIMEOUT_GRACE_SECONDS = env.float("VELO_RECORD_TIMEOUT_GRACE_SECONDS", default=5.0)
VELO_WATCHDOG_INTERVAL_SECONDS = env.float("VELO_WATCHDOG_INTERVAL_SECONDS", default=0.5)
# A requeued entry (or a running requeue run) whose worker stops answering
# for this long goes back to pending (to queued).
VELO_REQUEUE_CLAIM_SECONDS = env.float("VELO_REQUEUE_CLAIM_SECONDS", default=300.0)
# Entries a requeue run claims and commits at a time, at most (runs start at 50).
VELO_REQUEUE_CHUNK = env.int("VELO_REQUEUE_CHUNK", default=2000)
# Occurrences or DLQ entries a regroup run moves and commits at a time.
VELO_REGROUP_CHUNK = env.int("VELO_REGROUP_CHUNK", default=2000)
# Retention: error occurrences, and rollups and volumes, older than this many days are
# purged daily (a DLQ entry's retention is its job's dlq_retention_days).
VELO_OCCURRENCE_RETENTION_DAYS = env.int("VELO_OCCURRENCE_RETENTION_DAYS", default=30)
VELO_ROLLUP_RETENTION_DAYS = env.int("VELO_ROLLUP_RETENTION_DAYS", default=90)
# Minute rollups serve only the last hour's and six hours' charts: a day is plenty.
VELO_MINUTE_ROLLUP_RETENTION_HOURS = env.int("VELO_MINUTE_ROLLUP_RETENTION_HOURS", default=24)
VELO_PROCESSORS = env.list("VELO_PROCESSORS", default=[])
# Payload fields masked in messages, pages, exports and the API (dlq.redaction); a job adds
# its own in config["redact_fields"]. Setting it replaces the list: keep the defaults you want.
VELO_REDACT_FIELDS = env.list("VELO_REDACT_FIELDS", default=list(DEFAULT_REDACT_FIELDS))
VELO_DEPLOYMENT = from_environ(os.environ, default_version=__version__)

# VELO_LOG_FORMAT=json: one JSON object a line (python-json-logger), with
# "timestamp", "level", "logger", "message" and any `extra` fields, for every
# log line of the web and the Celery processes.
VELO_LOG_FORMAT = env.str("VELO_LOG_FORMAT", default="text")
_LOG_FORMATTERS = {
    "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(levelname)s %(name)s %(message)s",
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": True,
    },
}
if VELO_LOG_FORMAT not in _LOG_FORMATTERS:
    raise ImproperlyConfigured(f"VELO_LOG_FORMAT is {VELO_LOG_FORMAT!r}: use text or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"velo": _LOG_FORMATTERS[VELO_LOG_FORMAT]},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "velo"}},
    "root": {"handlers": ["console"], "level": env.str("VELO_LOG_LEVEL", default="INFO")},
}
if VELO_LOG_FORMAT == "json":
    # Loggers that bring handlers of their own, in their own text format: Django's
    # (runserver's access lines, django.request's errors) go to ours instead, and
    # Celery's task logger finds one configured and leaves it (CELERY_WORKER_HIJACK_ROOT_LOGGER).
    LOGGING["loggers"] = {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "celery.task": {"handlers": ["console"], "propagate": False},
    }
