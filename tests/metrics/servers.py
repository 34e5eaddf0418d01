"""gunicorn as production runs it, for the tests that need real web processes.

runserver (tests.integration.harness.WebServer) checks migrations before it
listens, so it cannot start without a database; gunicorn, like production,
starts without touching one.
"""

import re
import sys

import requests

from tests.integration.harness import Process, child_env, free_port

# The worker's pid first on each access-log line, so a test can tell who answered.
ACCESS_LOG_FORMAT = 'pid=%(p)s "%(r)s" %(s)s'
ANSWERED = re.compile(r'pid=<(\d+)> "GET (\S+) HTTP/[\d.]+" (\d+)')


class Gunicorn(Process):
    def __init__(self, log_dir, *, workers=2, name="gunicorn", **env):
        self.port = free_port()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "velo_site.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--access-logfile",
            "-",
            "--access-logformat",
            ACCESS_LOG_FORMAT,
        ]
        super().__init__(name, argv, child_env(**env), log_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        super().start()

        def live():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            try:
                return requests.get(f"{self.url}/live", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        self.wait_until(live, 60, f"{self.name} to answer /live")
        return self

    def pids_that_answered(self, path):
        """The worker pids the access log shows answering GET `path`."""
        return {pid for pid, p, _ in ANSWERED.findall(self.log()) if p == path}
