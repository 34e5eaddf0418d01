"""A Velo of a test's own on a scratch PostgreSQL cluster, for tests that take the database down.

The test process's Django still points at the test database; the processes started here
(web, workers, beat) and `manage` commands use the scratch cluster, which the test may stop,
crash and restart. Rows are read back with plain SQL (`rows`).
"""

import json
import subprocess
import sys

import psycopg

from devtools.services import ScratchPostgres

from .harness import ROOT, child_env


class ScratchSite:
    def __init__(self, tmp_path, **env):
        self.tmp = tmp_path
        self.pg = ScratchPostgres().start()
        self.env = child_env(DATABASE_URL=self.pg.url, DATABASE_CONN_MAX_AGE="60", **env)

    def manage(self, *argv):
        result = subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def prepare(self, jobs):
        """Migrate, create `jobs` ({name: Job fields}) and a token that may requeue; the token."""
        self.manage("migrate", "--noinput", "-v", "0")
        script = (
            "import json; from dlq.models import Job; from dlq.tokens import create_token\n"
            f"for name, fields in json.loads({json.dumps(json.dumps(jobs))}).items():\n"
            "    Job.objects.create(name=name, **fields)\n"
            "print(create_token('scratch', can_requeue=True)[1])\n"
        )
        return self.manage("shell", "-c", script).strip().splitlines()[-1]

    def rows(self, sql, *params):
        with psycopg.connect(self.pg.url.replace("postgres://", "postgresql://", 1)) as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql, *params):
        with psycopg.connect(self.pg.url.replace("postgres://", "postgresql://", 1)) as conn:
            conn.execute(sql, params)

    def value(self, sql, *params):
        return self.rows(sql, *params)[0][0]

    def remove(self):
        self.pg.remove()
