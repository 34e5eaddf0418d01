"""`ago`: relative time on the page, the exact UTC time on hover."""

from datetime import UTC, timedelta

from django.utils import timezone

from errors.templatetags.velo_time import ago


def test_a_past_moment_reads_as_ago_with_utc_on_hover():
    moment = timezone.now() - timedelta(minutes=3, seconds=10)
    html = ago(moment)
    assert ">3\xa0minutes ago</time>" in html
    utc = moment.astimezone(UTC)
    assert f'title="{utc:%Y-%m-%d %H:%M:%S} UTC"' in html
    assert f'datetime="{utc.isoformat()}"' in html


def test_no_moment_is_a_dash():
    assert ago(None) == "–"


def test_the_group_page_and_health_page_use_it(client, django_user_model, make_job, run_batch):
    from tests.conftest import BAD

    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(user)
    run_batch(make_job("orders"), [BAD])
    from errors.models import ErrorGroup

    group = ErrorGroup.objects.get()
    assert ">just now</time>" in client.get(f"/errors/{group.pk}/").content.decode()
    health = client.get("/dlq/health/").content.decode()
    assert '<td class="last-entry"><time datetime=' in health
