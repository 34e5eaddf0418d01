"""gunicorn settings for Velo's web process: `gunicorn -c deploy/gunicorn.conf.py`.

Read from the environment (all optional):

    GUNICORN_BIND            address to listen on                 127.0.0.1:8000
    WEB_CONCURRENCY          worker processes                     2 x CPUs + 1
    GUNICORN_TIMEOUT         seconds a request may take           30
    GUNICORN_LOG_LEVEL       gunicorn's own log level             info
    GUNICORN_CONTROL_SOCKET  control socket for gunicornc         none (off)

Several workers and /metrics (SPEC §6): the velo_* families are read from the
database, so every worker reports the same values; django-prometheus' django_*
families are counted per process, and prometheus_client merges them only when
PROMETHEUS_MULTIPROC_DIR names a directory the workers share. Set it to an
empty, private directory (a tmpfs in containers); the hooks below empty it at
start and drop the live gauges of each worker that exits. Left unset with more
than one worker, a private directory is made under the temp dir for this run.
"""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

wsgi_app = "velo_site.wsgi:application"
chdir = str(Path(__file__).resolve().parent.parent)  # the project root, wherever we start
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = "-"
errorlog = "-"
# VELO_LOG_FORMAT=json (as Velo's own logs): gunicorn's access and error lines as JSON too.
# gunicorn merges this over its defaults key by key, so naming its "generic" formatter is enough.
if os.environ.get("VELO_LOG_FORMAT", "text").strip().lower() == "json":
    logconfig_dict = {
        "formatters": {
            "generic": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": True,
            }
        }
    }
# Heartbeat files on a RAM disk: a container's overlay filesystem can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# prometheus_client picks single- or multi-process mode when it is first
# imported; loading the app in the master would import it before on_starting
# has set PROMETHEUS_MULTIPROC_DIR, and every worker would inherit that choice.
preload_app = False
# gunicorn >= 25 opens a control socket in $HOME/.gunicorn by default: one per
# user, so two servers on a host would share it, and a container's home may not
# be writable. Opt in by naming a path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

_made_dir = None  # the directory this master created itself, removed on exit


def on_starting(server):
    """Before any worker exists: choose and empty the multiprocess metrics directory."""
    global _made_dir
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        if server.cfg.workers <= 1:
            return
        path = _made_dir = tempfile.mkdtemp(prefix="velo-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        server.log.info("PROMETHEUS_MULTIPROC_DIR not set; using %s", path)
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    # Files of a previous run would add its dead workers' counts to ours. Only
    # prometheus_client's own files go, in case the directory was shared by mistake.
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker):
    """A worker is gone: its live gauges must stop counting (its counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # here, never at import: see preload_app

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_dir:
        shutil.rmtree(_made_dir, ignore_errors=True)
