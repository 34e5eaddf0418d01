"""Settings of the benchmark process: Velo's own, plus a stock admin site to compare against."""

from velo_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
