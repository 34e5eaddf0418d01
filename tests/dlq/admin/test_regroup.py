"""Grouping rules in the admin: write them on the job's page, read the preview, apply it; merge
and split groups from the group list. Each needs its permission."""

import json

from dlq import regroup
from dlq.actors import Actor
from dlq.models import Job, OperatorAction, RegroupRun
from errors.models import ErrorGroup
from tests.dlq.factories import attacks, auth_job, fail_with

RULES = [{"variables": [r"for (\S+) from"]}]


def grouping_url(job):
    return f"/admin/dlq/job/{job.pk}/grouping/"


def preview(client, job, rules=RULES):
    response = client.post(grouping_url(job), {"rules": json.dumps(rules)})
    run = RegroupRun.objects.order_by("-pk").first()
    return response, run


def test_a_preview_from_the_job_page_reports_merges_and_the_apply_button_applies_it(
    admin_client_, db
):
    job = auth_job()
    attacks(job)
    page = admin_client_.get(f"/admin/dlq/job/{job.pk}/change/").content.decode()
    assert f'href="{grouping_url(job)}"' in page
    assert "None: the built-in rules only." in page

    response, run = preview(admin_client_, job)
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.pk}/change/")
    assert run.dry_run
    regroup.execute_run(run.pk)  # what a worker does
    page = admin_client_.get(f"/admin/dlq/regrouprun/{run.pk}/change/").content.decode()
    assert "5</strong> groups → <strong>2" in page
    assert 'id="regroup-merges"' in page
    assert 'id="apply-rules"' in page
    assert ErrorGroup.objects.count() == 5  # a preview changes nothing

    response = admin_client_.post(f"/admin/dlq/regrouprun/{run.pk}/apply/")
    applied = RegroupRun.objects.order_by("-pk").first()
    assert response["Location"].endswith(f"/{applied.pk}/change/")
    assert (applied.dry_run, applied.rules) == (False, RULES)
    regroup.execute_run(applied.pk)
    assert ErrorGroup.objects.count() == 2
    assert Job.objects.get(pk=job.pk).grouping == RULES
    assert (
        'id="apply-rules"'
        not in admin_client_.get(f"/admin/dlq/regrouprun/{applied.pk}/change/").content.decode()
    )
    assert (
        OperatorAction.objects.filter(
            action="regroup", username=admin_client_.user.username
        ).count()
        == 2
    )


def test_bad_rules_are_refused_on_the_page_and_start_nothing(admin_client_, db):
    job = auth_job()
    attacks(job, rounds=1)
    for rules, words in (
        ("[not json", "not valid JSON"),
        ('{"variables": []}', "a JSON list"),
        ('[{"variables": ["(unclosed"]}]', "RE2"),
        ('[{"variables": ["nothing like this"]}]', "matches none of the"),
    ):
        response = admin_client_.post(grouping_url(job), {"rules": rules})
        assert response.status_code == 200
        assert words in response.content.decode()
    assert not RegroupRun.objects.exists()


def test_changing_rules_needs_the_change_job_permission(login, db):
    job = auth_job()
    attacks(job, rounds=1)
    viewer = login("dlq.view_job", "errors.view_errorgroup")
    assert viewer.get(grouping_url(job)).status_code == 403
    assert preview(viewer, job)[0].status_code == 403
    run = regroup.create_run(job, RULES, actor=Actor("ops", "shell"), dry_run=True)
    regroup.execute_run(run.pk)
    assert viewer.post(f"/admin/dlq/regrouprun/{run.pk}/apply/").status_code == 403
    assert RegroupRun.objects.count() == 1


def post_group_action(client, action, groups):
    return client.post(
        "/admin/errors/errorgroup/",
        {"action": action, "_selected_action": [g.pk for g in groups]},
        follow=True,
    )


def test_merge_and_split_from_the_group_list(admin_client_, db):
    job = auth_job()
    fail_with(job, ["Disk full on /var"] * 3)
    fail_with(job, ["No space left on device"] * 2)
    groups = list(ErrorGroup.objects.order_by("pk"))
    response = post_group_action(admin_client_, "merge_groups", groups)
    [merged] = ErrorGroup.objects.all()
    assert response.redirect_chain[-1][0] == f"/admin/errors/errorgroup/{merged.pk}/change/"
    assert merged.count == 5

    response = post_group_action(admin_client_, "unmerge_group", [merged])
    run = RegroupRun.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/dlq/regrouprun/{run.pk}/change/"
    regroup.execute_run(run.pk)
    assert sorted(ErrorGroup.objects.values_list("count", flat=True)) == [2, 3]


def test_merging_needs_the_triage_permission(login, db):
    job = auth_job()
    fail_with(job, ["Disk full on /var", "No space left on device"])
    viewer = login("errors.view_errorgroup")
    form = viewer.get("/admin/errors/errorgroup/").context["action_form"]
    offered = {name for name, _ in form.fields["action"].choices} if form else set()
    assert "merge_groups" not in offered
    post_group_action(viewer, "merge_groups", ErrorGroup.objects.all())
    assert ErrorGroup.objects.count() == 2
