"""The admin's "Fix and requeue all matching": preview a fix on a sample, then apply it as a run."""

import pytest

from dlq.models import DLQEntry, OperatorAction, RequeueRun
from dlq.requeue import execute_run

from .helpers import LIST, SCRIPT, messages_of

pytestmark = pytest.mark.django_db
ADD_SYMBOL = {"field": "/symbol", "value": '"ACME"'}


def fix_url(client, job):
    response = client.get(LIST, {"job__id__exact": job.pk})
    url = response.context.get("fix_matching_url")
    assert url, response.context.get("requeue_matching_note")
    assert 'id="fix-matching"' in response.content.decode()
    return url


def table():
    return list(DLQEntry.objects.order_by("pk").values())


def test_preview_shows_before_after_and_the_change_and_changes_nothing(admin_client_, job, fail):
    fail(3)  # {"price": 1}: no symbol
    rows = table()
    url = fix_url(admin_client_, job)

    response = admin_client_.post(url, {**ADD_SYMBOL, "preview": "1", "canary_size": "10"})

    assert response.status_code == 200
    page = response.content.decode()
    assert [item.entry_id for item, *_ in response.context["sample"]] == [r["id"] for r in rows]
    assert "add /symbol: &#x27;ACME&#x27;" in page
    assert page.count('class="fix-applies"') == 3
    assert "Fix and requeue 3 entries" in page
    assert table() == rows
    assert not RequeueRun.objects.exists()
    assert not OperatorAction.objects.exists()


def test_apply_starts_a_canary_run_that_fixes_and_resolves(admin_client_, job, fail):
    entries = fail(3)
    url = fix_url(admin_client_, job)

    response = admin_client_.post(url, {**ADD_SYMBOL, "apply": "1", "canary_size": "2"})

    run = RequeueRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/dlq/requeuerun/{run.pk}/change/"
    assert (run.canary_size, run.total) == (2, 3)
    assert run.fix["patch"] == [{"op": "add", "path": "/symbol", "value": "ACME"}]
    assert OperatorAction.objects.get().action == "fix"
    execute_run(run.pk)
    page = admin_client_.get(response["Location"]).content.decode()
    assert "Finished: all 3 resolved" in page
    assert "add /symbol" in page
    entry = admin_client_.get(f"{LIST}{entries[0].pk}/change/").content.decode()
    assert "add /symbol: &#x27;ACME&#x27;" in entry  # the attempt history shows the change
    assert {e.status for e in DLQEntry.objects.all()} == {"resolved"}


def test_a_conversion_and_a_patch_combine_and_a_skipped_payload_says_why(
    admin_client_, job, make_entries
):
    make_entries(2, payload={"symbol": "X", "price": "662,00"})
    make_entries(1, payload={"symbol": "X", "price": "N/A"})
    url = fix_url(admin_client_, job)

    response = admin_client_.post(
        url,
        {
            "patch": '[{"op": "remove", "path": "/symbol"}]',
            "field": "/price",
            "convert": "number",
            "preview": "1",
        },
    )

    page = response.content.decode()
    assert page.count('class="fix-applies"') == 2
    assert "Left as it is: &#x27;N/A&#x27; is not a number" in page
    assert "replace /price: &#x27;662,00&#x27; → 662.0" in page
    assert "remove /symbol (was &#x27;X&#x27;)" in page


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({}, "the fix is empty"),
        ({"patch": "[{"}, "The JSON Patch is not valid JSON"),
        ({"patch": '{"op": "add"}'}, "a JSON list of operations"),
        ({"patch": '[{"op": "add", "path": "/a"}]'}, "needs a &#x27;value&#x27; member"),
        ({"field": "price", "value": "1"}, "starts with /"),
        ({"field": "/price", "value": "1", "convert": "number"}, "not both"),
        ({"value": "1"}, "Name the field"),
        ({"field": "/price"}, "a value to set, or a conversion"),
        ({"field": "/price", "value": "not json"}, "The value is not valid JSON"),
    ],
)
def test_a_bad_fix_is_explained_and_nothing_starts(admin_client_, job, fail, form, says):
    fail(1)
    rows = table()
    response = admin_client_.post(fix_url(admin_client_, job), {**form, "apply": "1"})
    assert response.status_code == 200
    assert says in response.content.decode()
    assert table() == rows
    assert not RequeueRun.objects.exists()


def test_the_page_needs_requeue_and_view_permission(login, job, fail, admin_client_):
    fail(1)
    url = fix_url(admin_client_, job)
    for perms in [(), ("dlq.view_dlqentry",), ("dlq.requeue_dlqentry",)]:
        client = login(*perms)
        assert client.get(url).status_code == 403
        assert client.post(url, {**ADD_SYMBOL, "apply": "1"}).status_code == 403
    allowed = login("dlq.view_dlqentry", "dlq.requeue_dlqentry")
    assert allowed.get(url).status_code == 200
    assert not RequeueRun.objects.exists()


def test_payloads_in_the_preview_are_escaped(admin_client_, job, make_entries):
    make_entries(1, payload={"note": SCRIPT, "price": 1})
    response = admin_client_.post(fix_url(admin_client_, job), {**ADD_SYMBOL, "preview": "1"})
    assert SCRIPT not in response.content.decode()


def test_the_group_page_offers_the_fix_over_its_pending_entries(admin_client_, job, fail):
    [entry] = fail(1)
    page = admin_client_.get(f"/errors/{entry.error_group_id}/")
    body = page.content.decode()
    assert 'id="group-fix"' in body
    url = body.split('id="group-fix" href="')[1].split('"')[0].replace("&amp;", "&")
    response = admin_client_.post(url, {**ADD_SYMBOL, "apply": "1"}, follow=True)
    run = RequeueRun.objects.get()
    assert run.filters == {"error_group": entry.error_group_id}
    assert any("started" in m for m in messages_of(response))


def test_without_the_sensitive_permission_a_fix_may_not_read_a_secret(login, job, make_entries):
    """Copying a sensitive field elsewhere would show it: refused, saying why; the
    permission lifts it (issue 13, finding 3)."""
    make_entries(2, payload={"price": 1, "password": "S3cr3t-pw!"})
    copy = {"patch": '[{"op": "copy", "from": "/password", "path": "/symbol"}]', "preview": "1"}
    requeuer = login("dlq.view_dlqentry", "dlq.change_dlqentry", "dlq.requeue_dlqentry")

    response = requeuer.post(fix_url(requeuer, job), copy)

    page = response.content.decode()
    assert "sensitive field" in page
    assert "S3cr3t-pw!" not in page
    assert "sample" not in response.context or not response.context["sample"]
    trusted = login(
        "dlq.view_dlqentry",
        "dlq.change_dlqentry",
        "dlq.requeue_dlqentry",
        "dlq.view_sensitive_payload",
    )
    assert "S3cr3t-pw!" in trusted.post(fix_url(trusted, job), copy).content.decode()
