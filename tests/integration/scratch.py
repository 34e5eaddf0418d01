"""A Velo of a test's own on a scratch PostgreSQL cluster, for tests that take the database down.

The test process's Django still points at the test database; the processes started with
`env` (web, workers) and `manage` commands use the scratch cluster (devtools.soak.ScratchSite).
"""

from devtools import soak

from .harness import child_env


class ScratchSite(soak.ScratchSite):
    def __init__(self, tmp_path, **env):
        super().__init__(tmp_path, child_env(), **env)
