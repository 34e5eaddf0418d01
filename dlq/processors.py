"""The processor registry and Velo's built-in processors.

A processor is `process(record, ctx)`; it raises to fail a record. Processors
that never touch the database register with `transactional=False`, so the
engine can run them outside a transaction and skip a savepoint per record.
"""

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class ProcessorContext:
    """What a processor may know about the record it is handed."""

    job: Any
    config: dict
    batch_id: int
    attempt: int
    logger: logging.Logger = field(repr=False)


@dataclass(frozen=True)
class Processor:
    name: str
    func: Callable[[Any, ProcessorContext], Any]
    transactional: bool = True


class Registry(dict):
    """Processors by name."""

    def register(self, name, func, *, transactional=True):
        self[name] = Processor(name, func, transactional)
        return func


registry = Registry()


def processor(name, *, transactional=True):
    """Register `process(record, ctx)` under `name`."""

    def decorate(func):
        return registry.register(name, func, transactional=transactional)

    return decorate


def get(name):
    try:
        return registry[name]
    except KeyError:
        raise LookupError(f"unknown processor {name!r}") from None


def load_builtin_and_configured():
    """Import the built-ins and every module named in settings.VELO_PROCESSORS.

    A dotted path to a module registers whatever it decorates; a dotted path to
    a callable registers that callable under its path.
    """
    from . import builtin_processors  # noqa: F401  (registers on import)

    for path in settings.VELO_PROCESSORS:
        try:
            importlib.import_module(path)
        except ModuleNotFoundError:
            module_name, _, attr = path.rpartition(".")
            func = getattr(importlib.import_module(module_name), attr)
            registry.register(path, func)


class TransientFailure(Exception):
    """demo.flaky's failure: one that goes away after a few attempts."""
