"""The admin and the operator pages are styled under gunicorn (issue 13, finding 7).

Nothing served /static/ outside runserver. Here the production settings (velo_site.settings,
DJANGO_DEBUG=0: WhiteNoise and the compressed manifest storage) run `collectstatic` into a
temporary STATIC_ROOT, gunicorn runs with deploy/gunicorn.conf.py, and Debian's chromium,
driven by Playwright, logs in to /admin/ and opens /errors/: every stylesheet and script
loads, and the admin's header has the colour its CSS gives it.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, Process, child_env, free_port, serves_live, wait_for
from tests.integration.test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD

from .promql import DEPLOY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots")
# Django's admin CSS: #header { background: var(--header-bg) }, --header-bg: var(--secondary),
# --secondary: #417690. Unstyled, the header is transparent.
HEADER_BACKGROUND = "rgb(65, 118, 144)"


def production_env(static_root, **overrides):
    """The production settings module over the test database, DEBUG off."""
    return child_env(
        DJANGO_SETTINGS_MODULE="velo_site.settings",
        DJANGO_DEBUG=0,
        DJANGO_SECRET_KEY="velo-test-only-" + "x" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        VELO_STATIC_ROOT=static_root,
        **overrides,
    )


def test_admin_and_operator_pages_load_their_css_and_js_from_gunicorn(tmp_path, django_user_model):
    if not CHROMIUM:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    static_root = tmp_path / "static"
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=production_env(static_root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert (static_root / "staticfiles.json").is_file()  # the manifest storage ran

    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    port = free_port()
    env = production_env(static_root, WEB_CONCURRENCY=1, GUNICORN_BIND=f"127.0.0.1:{port}")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = Process(
        "gunicorn",
        [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")],
        env,
        tmp_path,
    ).start()
    url = f"http://127.0.0.1:{port}"

    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        wait_for(lambda: serves_live(url), timeout=60, what="gunicorn to answer /live")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(
                    base_url=url, viewport={"width": 1400, "height": 900}
                ).new_page()
                static = []
                page.on(
                    "response",
                    lambda r: static.append(r) if "/static/" in r.url else None,
                )

                page.goto("/admin/login/?next=/admin/")
                page.fill("#id_username", "ops")
                page.fill("#id_password", PASSWORD)
                page.click("input[type=submit]")
                page.wait_for_selector("#site-name")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(SHOTS / "admin-gunicorn.png"), full_page=True)

                base_css = next(
                    (r for r in static if re.search(r"/admin/css/base\.[0-9a-f]{12}\.css$", r.url)),
                    None,
                )
                assert base_css is not None, [r.url for r in static]
                assert base_css.status == 200
                assert base_css.headers["content-type"].startswith("text/css")
                # Hashed names are cached for good by browsers and proxies.
                assert "immutable" in base_css.headers.get("cache-control", "")
                header = page.eval_on_selector(
                    "#header", "e => getComputedStyle(e).backgroundColor"
                )
                assert header == HEADER_BACKGROUND
                assert any("/static/velo/admin." in r.url for r in static)

                static.clear()
                page.goto("/errors/")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(SHOTS / "errors-gunicorn.png"), full_page=True)
                loaded = {r.url.split("/static/", 1)[1]: r.status for r in static}
                assert loaded and set(loaded.values()) == {200}, loaded
                assert any(re.fullmatch(r"errors/pages\.[0-9a-f]{12}\.css", n) for n in loaded)
                assert any(n.endswith(".js") for n in loaded), loaded
                assert (
                    page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
                    == HEADER_BACKGROUND
                )
            finally:
                browser.close()
    except AssertionError:
        print(f"--- gunicorn log (tail)\n{gunicorn.log()[-4000:]}")
        raise
    finally:
        gunicorn.stop()
