"""Velo: the Django project that wires the errors and dlq apps together."""

from .celery import app as celery_app

# What a node reports as its version when APP_VERSION is not set.
__version__ = "0.1.0"

__all__ = ("__version__", "celery_app")
