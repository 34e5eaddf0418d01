"""The benchmark's own PostgreSQL database and Redis db: checked, created, migrated, dropped."""

import os
import platform
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "velo_bench")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
QUEUE = "velo-bench"
CONTROL_QUEUE = "velo-bench-control"
# What every process of the benchmark (this one, gunicorn, the workers) runs with.
ENV = {
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "CELERY_BROKER_URL": REDIS_URL,
    "DJANGO_SECRET_KEY": "velo-bench-only-insecure-key",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "VELO_QUEUE": QUEUE,
    "VELO_CONTROL_QUEUE": CONTROL_QUEUE,
    "VELO_LOG_LEVEL": "WARNING",
    "VELO_PROCESSORS": "bench.processors",
    "PYTHONUNBUFFERED": "1",
}


class Unreachable(RuntimeError):
    """PostgreSQL or Redis is not where the benchmark expects it."""


def _port_open(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def check_services():
    import psycopg
    import redis

    if not _port_open("127.0.0.1", 5432):
        raise Unreachable(
            "PostgreSQL is not reachable at 127.0.0.1:5432 (start it as .ci/run does)"
        )
    if not _port_open("127.0.0.1", 6379):
        raise Unreachable("Redis is not reachable at 127.0.0.1:6379 (start it as .ci/run does)")
    with psycopg.connect(f"{PG}/postgres", connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()


def create_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    flush_redis()


def drop_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    flush_redis()


def flush_redis():
    """Redis db 15 is the benchmark's own (queues velo-bench, velo-bench-bare, keys bench:*)."""
    import redis

    redis.Redis.from_url(REDIS_URL, socket_timeout=5).flushdb()


def setup_django():
    """Configure this process for the bench database, migrate it, and send Velo's log to a file."""
    os.environ.update(ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    import logging

    # The engine logs failed records (a few of each error group per batch attempt, SPEC §4):
    # keep that cost, but not on the terminal.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(LOG_DIR / "bench-process.log", "w"))  # noqa: SIM115


def child_env(**extra):
    env = {**os.environ, **ENV, "DJANGO_SETTINGS_MODULE": "velo_site.settings"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def machine():
    """Lines describing the machine and PostgreSQL, printed with the table."""
    from django.db import connection

    mem = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    keys = (
        "shared_buffers",
        "work_mem",
        "maintenance_work_mem",
        "effective_cache_size",
        "synchronous_commit",
        "fsync",
        "max_wal_size",
        "jit",
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        settings = []
        for key in keys:
            cursor.execute(f"SHOW {key}")
            settings.append(f"{key}={cursor.fetchone()[0]}")
    load = os.getloadavg()
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {int(mem) / 1024**2:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"PostgreSQL {version}: " + ", ".join(settings),
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(other work on the machine makes every figure noisier)",
    ]
