"""Processors: `process(record, ctx)` callables a job runs on its records, registered by name.

A processor raises to fail a record. One that never touches the database
registers with `transactional=False`, so the engine can run it outside a
transaction and skip a savepoint per record. One whose job config can be
wrong registers a `check_config(config)` that raises ValueError, so a broken
config is refused when the job is saved rather than failing every record.
A processor with side effects it cannot roll back reads `ctx.requeue` and
`ctx.idempotency_key` (`replay`).

Velo's own processors (`builtin`) register in `DlqConfig.ready()`, the demo's
in the demo app's; `load_configured` registers those that VELO_PROCESSORS
names. This package imports none of them.
"""

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .replay import Requeue, idempotency_key


@dataclass(slots=True)
class ProcessorContext:
    """What a processor may know about the record it is handed.

    One context serves a whole batch attempt: the runner moves `index` to each
    record in turn (an attribute set, nothing allocated per record), and
    `idempotency_key` is built only when a processor asks for it.
    """

    job: Any
    config: dict
    batch_id: int
    attempt: int
    logger: logging.Logger = field(repr=False)
    # None in batch processing; what requeue is running this record (replay.Requeue).
    requeue: Requeue | None = None
    # The record's index in its batch.
    index: int = 0

    @property
    def idempotency_key(self) -> str:
        """The same for a record in its batch and for its DLQ entry, on every requeue."""
        return idempotency_key(self.job.pk, self.batch_id, self.index)


def _accept_any_config(config):
    """The default check: a processor that takes no options takes any."""


@dataclass(frozen=True)
class Processor:
    name: str
    func: Callable[[Any, ProcessorContext], Any]
    transactional: bool = True
    check_config: Callable[[dict], None] = _accept_any_config


class Registry(dict):
    """Processors by name."""

    def register(self, name, func, *, transactional=True, check_config=None):
        self[name] = Processor(name, func, transactional, check_config or _accept_any_config)
        return func

    def register_all(self, processors: Iterable[Processor]):
        for each in processors:
            self[each.name] = each

    def offer(self, processors: Iterable[Processor]):
        """Register each unless its name is taken: a VELO_PROCESSORS module may replace it,
        whichever app starts first."""
        for each in processors:
            self.setdefault(each.name, each)


registry = Registry()


def processor(name, *, transactional=True, check_config=None):
    """Register `process(record, ctx)` under `name`."""

    def decorate(func):
        return registry.register(name, func, transactional=transactional, check_config=check_config)

    return decorate


def resolve(name):
    """The processor registered as `name`, or one that fails every record with LookupError.

    A job whose processor went away (a removed module, a typo in a TOML file
    applied by hand) keeps its records: each fails, and lands in the DLQ to be
    requeued once the processor is back.
    """
    found = registry.get(name)
    if found is not None:
        return found

    def missing(record, ctx):
        raise LookupError(f"unknown processor {name!r}")

    return Processor(name, missing, transactional=False)


def load_configured(paths):
    """Import every module named in `paths` (settings.VELO_PROCESSORS).

    A dotted path to a module registers whatever it decorates; a dotted path to
    a callable registers that callable under its path.
    """
    for path in paths:
        try:
            importlib.import_module(path)
        except ModuleNotFoundError:
            module_name, _, attr = path.rpartition(".")
            func = getattr(importlib.import_module(module_name), attr)
            registry.register(path, func)
