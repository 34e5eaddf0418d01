"""Settings for the test suite: the production settings, with a test-only secret and hosts."""

import os
import secrets

# A key of this run's own (settings refuse any key written in the repository when
# DEBUG is off); the workers and servers the suite starts inherit it.
os.environ.setdefault("DJANGO_SECRET_KEY", "velo-test-" + secrets.token_urlsafe(40))
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# A queue and a broker folder of this test run's own, inherited by the workers
# the suite starts, so no stale message from another run is ever picked up.
# Live-server threads must not keep connections that block dropping the test database.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
os.environ.setdefault("VELO_PROCESSORS", "tests.processors")
os.environ.setdefault("VELO_QUEUE", f"velo-test-{os.getpid()}")
os.environ.setdefault("VELO_CONTROL_QUEUE", f"velo-control-test-{os.getpid()}")
os.environ.setdefault(
    "VELO_BROKER_DIR",
    os.path.join(os.path.dirname(__file__), "..", "var", f"test-broker-{os.getpid()}"),
)

from .settings import *  # noqa: F403

# The suite renders pages without running collectstatic first: plain names, no manifest
# (tests/deploy/test_static_under_gunicorn.py runs the production storage).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise warns at every start when STATIC_ROOT is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
