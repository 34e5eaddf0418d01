"""This process's worker identity: which start of which worker a claim made here belongs to.

Set once in a Celery worker's parent process, before its pool forks, so every
pool process inherits it; a claim records it with the pool process's pid. A
process that is no worker (the web, the shell) has none, and its claims are
recovered by their leases alone.
"""

import os
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    boot_id: str
    node_name: str
    pid: int  # the worker's parent process


_identity = None


def start(node_name):
    """Give this process (and the pool it will fork) a new identity; return it."""
    global _identity
    _identity = Identity(secrets.token_hex(16), node_name, os.getpid())
    return _identity


def current():
    """This worker's identity, or None outside a worker."""
    return _identity


def forget():
    global _identity
    _identity = None


def running(pid):
    """Whether a process of this pid is alive on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
