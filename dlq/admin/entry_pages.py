"""The DLQ entry admin's own pages: Requeue, Edit payload and Discard for one entry, and
"requeue all matching" and "fix and requeue all matching". Each checks its permission,
validates, and calls a service."""

import json
from dataclasses import replace

from django.contrib import messages
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.text import Truncator

from common.ids import parse_id

from .. import redaction, requeue, triage
from ..actors import Actor
from ..models import DLQEntry, RequeueRun
from ..requeue import RequeueOptions, RequeueScope
from ..requeue.fix import diff_in_words, preview
from .forms import (
    EditPayloadForm,
    FixRunOptionsForm,
    PayloadFixForm,
    RequeueOptionsForm,
    RequeueScopeForm,
)
from .runs import run_held_message, run_started_link, run_started_message

# The entry page's query parameter naming the one-entry run it follows.
FOLLOW = "requeue_run"


class EntryPagesMixin:
    """Mixed into DLQEntryAdmin, with OperatorPermissions."""

    def get_urls(self):
        wrap = self.admin_site.admin_view  # login, staff, CSRF, never cached
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "requeue-matching/",
                wrap(self.requeue_matching_view),
                name=f"{name}_requeue_matching",
            ),
            path("fix-matching/", wrap(self.fix_matching_view), name=f"{name}_fix_matching"),
            path("<path:object_id>/requeue/", wrap(self.requeue_view), name=f"{name}_requeue"),
            path(
                "<path:object_id>/edit-payload/",
                wrap(self.edit_payload_view),
                name=f"{name}_edit_payload",
            ),
            path("<path:object_id>/discard/", wrap(self.discard_view), name=f"{name}_discard"),
            *super().get_urls(),
        ]

    def _entry(self, request, object_id):
        entry = self.get_object(request, unquote(object_id))
        if entry is None:
            raise Http404(f"There is no DLQ entry {object_id}.")
        return entry

    def _page(self, request, template, title, status=200, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "preserved_filters": self.get_preserved_filters(request),
                **context,
            },
            status=status,
        )

    def _with_filters(self, request, url):
        """`url`, still carrying the list's filters this page was opened with."""
        context = {"opts": self.opts, "preserved_filters": self.get_preserved_filters(request)}
        return add_preserved_filters(context, url)

    def _back_to(self, request, entry):
        """The entry's page, still carrying the list's filters (its Close returns to them)."""
        url = reverse("admin:dlq_dlqentry_change", args=[entry.pk])
        return redirect(self._with_filters(request, url))

    def _follow_run(self, request, entry, run):
        """The entry's page, following the one-entry run a worker works: it shows the
        run's progress until the result arrives (change_view)."""
        url = reverse("admin:dlq_dlqentry_change", args=[entry.pk])
        return redirect(self._with_filters(request, f"{url}?{urlencode({FOLLOW: run.pk})}"))

    def following(self, request, entry_id):
        """(the one-entry run the entry's page follows, or None; the response to send
        instead of the page, or None). A run that has ended is reported as a message, and
        the page is shown again without following it."""
        run_id = parse_id(request.GET.get(FOLLOW, ""))
        run = RequeueRun.objects.filter(pk=run_id).first() if run_id else None
        if run is None:
            return None, None
        if run.status in RequeueRun.ACTIVE:
            return run, None
        if run.status == RequeueRun.Status.CANCELLED:
            self.message_user(request, f"Requeue run {run.pk}: {run.outcome}.", messages.WARNING)
        else:
            self.report_run(request, entry_id, run)
        url = reverse("admin:dlq_dlqentry_change", args=[entry_id])
        return None, redirect(self._with_filters(request, url))

    def report_run(self, request, entry_id, run):
        """Say how a one-entry run ended (its page or the entry's shows it when it has)."""
        if run.succeeded:
            self.message_user(request, f"Entry {entry_id} resolved.", messages.SUCCESS)
        elif run.failed:
            entry = DLQEntry.objects.only("error_type", "error_message").get(pk=entry_id)
            error = Truncator(f"{entry.error_type}: {entry.error_message}").chars(500)
            self.message_user(request, f"Entry {entry_id} failed again: {error}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"Entry {entry_id} was not requeued: it was no longer pending.",
                messages.WARNING,
            )

    def requeue_view(self, request, object_id):
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        entry = self._entry(request, object_id)
        if entry.status != DLQEntry.Status.PENDING:
            self.message_user(
                request,
                f"Entry {entry.pk} is {entry.status}; only pending entries are requeued.",
                messages.WARNING,
            )
        else:
            # On a worker, as a one-entry run: a record that hangs holds a worker, not
            # this request (nor the entry's claim past its run's).
            try:
                run = requeue.start_run(
                    RequeueScope.of_ids([entry.pk]), RequeueOptions(), Actor.from_request(request)
                )
            except requeue.ScopeHeld as exc:
                self.message_user(request, run_held_message(exc), messages.ERROR)
            else:
                return self._follow_run(request, entry, run)
        return self._back_to(request, entry)

    def edit_payload_view(self, request, object_id):
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        entry = self._entry(request, object_id)
        # Whoever may not see sensitive fields edits them masked; a mask left as it was keeps
        # the stored value (dlq.redaction.Redactor.unmask), so saving never loses nor shows it.
        reveal = redaction.may_see(request.user)
        redactor = redaction.for_job(entry.job)
        if request.method == "POST":
            form = EditPayloadForm(request.POST)
            if form.is_valid():
                payload = form.cleaned_data["payload"]
                if not reveal:
                    payload = redactor.unmask(payload, entry.payload)
                try:
                    run = triage.edit_and_requeue(
                        entry.pk, payload, actor=Actor.from_request(request)
                    )
                except triage.EditRefused as exc:
                    form.add_error("payload", str(exc))
                except requeue.ScopeHeld as exc:
                    # Nothing was changed: the edit and its run are one transaction.
                    self.message_user(request, run_held_message(exc), messages.ERROR)
                else:
                    return self._follow_run(request, entry, run)
        else:
            shown = entry.payload if reveal else redactor.mask(entry.payload)
            text = json.dumps(shown, indent=2, ensure_ascii=False)
            form = EditPayloadForm(initial={"payload": text})
        return self._page(
            request,
            "admin/dlq/dlqentry/edit_payload.html",
            f"Edit the payload of entry {entry.pk} and requeue it",
            original=entry,
            form=form,
        )

    def discard_view(self, request, object_id):
        if not self.has_discard_permission(request):
            raise PermissionDenied
        entry = self._entry(request, object_id)
        if request.method == "POST":
            discarded = triage.discard(
                DLQEntry.objects.filter(pk=entry.pk),
                actor=Actor.from_request(request),
                target=f"DLQ entry {entry.pk}",
            )
            if discarded:
                self.message_user(request, f"Entry {entry.pk} discarded.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"Entry {entry.pk} is no longer pending; nothing was discarded.",
                    messages.WARNING,
                )
            return self._back_to(request, entry)
        return self._page(
            request, "admin/dlq/dlqentry/discard.html", f"Discard entry {entry.pk}?", original=entry
        )

    def requeue_matching_view(self, request):
        """Confirm, then start, a run over the list's filter cut at the newest id it showed."""
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        # The list's own query rides along (for Cancel and the way back); it is no filter.
        scope = RequeueScopeForm(_without(request.GET, "_changelist_filters"))
        options = RequeueOptionsForm(request.POST if request.method == "POST" else None)
        if not scope.is_valid():
            return self._page(
                request,
                "admin/dlq/dlqentry/requeue_matching.html",
                "Requeue all matching",
                scope=scope,
                status=400,
            )
        matching = scope.cleaned_data["scope"]
        status = 200
        if request.method == "POST" and options.is_valid():
            try:
                run = requeue.start_run(
                    matching, options.cleaned_data["options"], Actor.from_request(request)
                )
            except requeue.InvalidRequeue as exc:
                options.add_error(None, str(exc))
            except requeue.ScopeHeld as exc:
                self.message_user(request, run_held_message(exc), messages.ERROR)
                status = 409
            else:
                if not self.get_preserved_filters(request):
                    self.message_user(request, run_started_message(run), messages.SUCCESS)
                    return redirect("admin:dlq_requeuerun_change", run.pk)
                # Opened from the list: back to it as it was filtered, the run one click away.
                self.message_user(request, run_started_link(run), messages.SUCCESS)
                url = reverse("admin:dlq_dlqentry_changelist")
                return redirect(self._with_filters(request, url))
        return self._page(
            request,
            "admin/dlq/dlqentry/requeue_matching.html",
            "Requeue all matching",
            status=status,
            scope=scope,
            form=options,
            count=matching.count(),  # counted the way the run will count
            max_id=matching.max_id,
        )

    def fix_matching_view(self, request):
        """One fix for every payload of the list's filter: preview a sample, then apply and
        requeue as a run (canary on by default) over the filter cut at the newest id shown."""
        if not (self.has_requeue_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied  # the preview shows payloads
        scope = RequeueScopeForm(_without(request.GET, "_changelist_filters"))
        posted = request.POST if request.method == "POST" else None
        fix, options = PayloadFixForm(posted), FixRunOptionsForm(posted)
        page = {"scope": scope, "fix_form": fix, "form": options}
        if not scope.is_valid():
            return self._page(
                request,
                "admin/dlq/dlqentry/fix_matching.html",
                "Fix and requeue",
                status=400,
                **page,
            )
        matching = scope.cleaned_data["scope"]
        status = 200
        if posted is not None and fix.is_valid() and _may_apply(request, fix):
            if "apply" in posted and options.is_valid():
                try:
                    run = requeue.start_run(
                        matching,
                        replace(options.cleaned_data["options"], fix=fix.cleaned_data["fix"]),
                        Actor.from_request(request),
                    )
                except requeue.InvalidRequeue as exc:
                    options.add_error(None, str(exc))
                except requeue.ScopeHeld as exc:
                    self.message_user(request, run_held_message(exc), messages.ERROR)
                    status = 409
                else:
                    self.message_user(request, run_started_message(run), messages.SUCCESS)
                    return redirect("admin:dlq_requeuerun_change", run.pk)
            page["sample"] = [
                (
                    item,
                    _pretty(item.before),
                    "" if item.error else _pretty(item.after),
                    diff_in_words(item.diff),
                )
                for item in preview(
                    matching, fix.cleaned_data["fix"], reveal=redaction.may_see(request.user)
                )
            ]
        return self._page(
            request,
            "admin/dlq/dlqentry/fix_matching.html",
            "Fix and requeue all matching",
            status=status,
            count=matching.count(),
            max_id=matching.max_id,
            **page,
        )


def _pretty(payload):
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)


def _without(query, name):
    """A copy of a QueryDict without one parameter."""
    query = query.copy()
    query.pop(name, None)
    return query


def _may_apply(request, fix_form):
    """Whether the user may run this fix: one that reads a sensitive field needs the
    permission to see those fields (else the form says why)."""
    if redaction.may_see(request.user):
        return True
    try:
        fix_form.cleaned_data["fix"].refuse_sensitive_reads()
    except requeue.InvalidRequeue as exc:
        fix_form.add_error(None, str(exc))
        return False
    return True
