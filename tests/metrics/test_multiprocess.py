"""/metrics from several gunicorn workers in multiprocess mode: every worker says the same."""

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .expected import expected_workload_samples
from .scraping import parse, promtool_problems, velo_samples
from .servers import Gunicorn
from .workload import DEPLOYMENT, build_workload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCRAPES = 20
MAX_SCRAPES = 200


@pytest.fixture
def gunicorn(tmp_path):
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    server = Gunicorn(
        tmp_path,
        workers=2,
        PROMETHEUS_MULTIPROC_DIR=multiproc_dir,
        NODE_ID=DEPLOYMENT.node_id,
        NODE_NAME=DEPLOYMENT.node_name,
        AWS_REGION=DEPLOYMENT.region,
        APP_VERSION=DEPLOYMENT.version,
    ).start()
    yield server
    server.stop()
    print(f"--- gunicorn log (tail)\n{server.log()[-3000:]}")


def scrape(server):
    # A new connection each time, so the kernel may hand it to either worker.
    response = requests.get(f"{server.url}/metrics", headers={"Connection": "close"}, timeout=30)
    assert response.status_code == 200, response.text[:500]
    return response.text


def test_two_gunicorn_workers_export_the_same_exact_velo_values(clock, gunicorn):
    build_workload(clock)
    expected = expected_workload_samples()

    # Four scrapes at a time, so a busy worker leaves the next connection to
    # the other; on until the access log shows both workers answering.
    texts = []
    with ThreadPoolExecutor(4) as pool:
        while len(texts) < SCRAPES or (
            len(gunicorn.pids_that_answered("/metrics")) < 2 and len(texts) < MAX_SCRAPES
        ):
            texts += pool.map(scrape, [gunicorn] * 4)
    assert len(gunicorn.pids_that_answered("/metrics")) == 2, gunicorn.log()[-2000:]

    for text in texts:
        assert velo_samples(parse(text)) == expected

    # django-prometheus' families, merged over the workers by the multiprocess
    # collector. One more scrape, after every other has been answered (and so
    # counted), sees them all.
    families = parse(scrape(gunicorn))
    django = {name for name in families if name.startswith("django_")}
    assert "django_http_requests_total_by_method" in django
    assert "django_http_responses_total_by_status" in django
    by_method = {
        sample.labels["method"]: sample.value
        for sample in families["django_http_requests_total_by_method"].samples
        if sample.name.endswith("_total")
    }
    assert by_method["GET"] >= len(texts)
    # Multiprocess mode has no per-process collectors: no python_* or process_* families.
    assert not [name for name in families if name.startswith(("process_", "python_"))]
    if shutil.which("promtool"):
        assert promtool_problems(texts[-1]) == []
