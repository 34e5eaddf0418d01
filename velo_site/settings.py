"""Django settings for Velo: the one place that reads the environment."""

import os
from pathlib import Path

import environ
from celery.schedules import crontab
from kombu import Queue

from errors.context import from_environ
from velo_site import __version__

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Development values are only handed out while DEBUG is on; production must say.
SECRET_KEY = (
    env.str("DJANGO_SECRET_KEY", default="velo-dev-only-insecure-key")
    if DEBUG
    else env.str("DJANGO_SECRET_KEY")
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
    # errors before dlq: dlq.admin registers the error groups' admin with its actions.
    "errors",
    "dlq",
    "demo",
]

MIDDLEWARE = [
    "velo_site.request_guard.MalformedRequestMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dlq.api.middleware.ApiErrorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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


def _database(url):
    """A Django DATABASES entry from a URL, with the SQLite tuning the embedded default needs."""
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
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
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "velo_site" / "static"]
STATIC_ROOT = VAR_DIR / "static"

# Forms (the admin's, the operator pages') are refused over this many bytes (Django's
# default, 2.5 MiB). The API's POST views never use request.body or request.POST: they
# read the body themselves, at most VELO_MAX_BODY_BYTES of it (dlq.api.body.read_body).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

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
# GET /api/v1/dlq stops adding entries to a page once their payloads pass this many bytes.
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
VELO_DEPLOYMENT = from_environ(os.environ, default_version=__version__)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("VELO_LOG_LEVEL", default="INFO")},
}
