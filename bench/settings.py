"""Settings of the benchmark process: Velo's own, plus a stock admin site to compare against."""

from velo_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# Pages are rendered without collectstatic having run (a fresh checkout has no manifest):
# plain static names, as under DEBUG; what they cost is the same.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
