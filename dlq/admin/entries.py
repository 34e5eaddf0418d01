"""The DLQ entry admin: a list that stays fast at millions of rows, the entry's page with its
attempt history, and the operator's actions on both. The extra pages live in entry_pages."""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.db.models import BooleanField, F, TextField, Value
from django.db.models.functions import Cast, Left, Substr
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import Truncator

from common.admin import (
    BigTableAdmin,
    BoundedCountPaginator,
    ReadOnlyAdmin,
    admin_link,
    cut,
    moment_column,
    pre,
    pretty_json,
)
from common.ids import parse_id
from common.moments import moment_html
from errors.admin import group_page_link

from .. import history, redaction, requeue, triage
from ..actors import Actor
from ..models import DLQAttempt, DLQEntry
from ..requeue import RequeueOptions, RequeueScope
from ..requeue.fix import diff_in_words
from .entry_pages import EntryPagesMixin
from .export import jsonl_response
from .filters import (
    BatchFilter,
    CreatedFilter,
    ErrorGroupFilter,
    StatusFilter,
    effective_filters,
    effective_status,
    search,
    search_batch,
)
from .permissions import OperatorPermissions
from .runs import run_held_message, run_started_link

# Enough of a message, or of a record, for a list cell; either can be megabytes long.
ERROR_EXCERPT_CHARS = 200
PAYLOAD_EXCERPT_CHARS = 120
# The list's query parameters a requeue run can act on, and those that do not narrow it.
SCOPE_PARAMS = ("job__id__exact", "error_group__id__exact", "batch__id__exact", "status__exact")
VIEW_PARAMS = ("o", "p")


def payload_change(attempt):
    """What the attempt ran with: a bulk fix's changes, a payload edited by hand, or as stored;
    a sensitive field's values masked unless the page's user may see them (`shown_to`)."""
    if attempt.payload_diff:
        diff = attempt.payload_diff
        if not attempt.sensitive_shown:
            diff = redaction.for_config(_job_config(attempt)).mask_diff(diff)
        return pre("\n".join(diff_in_words(diff)))
    return "edited by hand" if attempt.payload_edited else "-"


def history_rows(entry):
    """The entry page's attempt history, oldest first: the original attempt (from the entry's
    row while it holds it, dlq.history) and every stored one, each a row of cells.

    The attempts are shown as the entry was loaded for the page: whether its user may see
    sensitive fields, and its job's config naming them, come from the entry.
    """
    rows = []
    for attempt in history.of_entry(entry):
        attempt.sensitive_shown, attempt.job_config = entry.sensitive_shown, entry.job.config
        rows.append(
            {
                "when": moment_html(attempt.at),
                "kind": attempt.get_kind_display(),
                "started_by": attempt.started_by,
                "outcome": attempt.get_outcome_display(),
                "error_message": attempt.error_message,
                "payload_change": payload_change(attempt),
                "node_id": attempt.node_id,
            }
        )
    return rows


@admin.register(DLQEntry)
class DLQEntryAdmin(EntryPagesMixin, OperatorPermissions, ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "job",
        "status",
        "group_link",
        "error",
        "record",
        "attempts",
        "node",
        "created",
    )
    list_select_related = ("job",)
    list_defer = ("payload", "original_payload", "traceback", "error_message")
    # Pending unless another status is chosen; status is fixed choices and job lists the
    # Job rows: neither scans the entries.
    list_filter = (StatusFilter, "job", ErrorGroupFilter, BatchFilter, CreatedFilter)
    paginator = BoundedCountPaginator
    # Every filter's index ends in id, so newest-first by id is what they serve.
    ordering = ("-id",)
    sortable_by = ("id", "created")
    search_fields = ("error_message",)  # shows the box; get_search_results decides
    search_help_text = "An entry id, batch:<id>, or words from the error message."
    payload_search_help = {
        "on": " With a job and a status chosen, also a value of the record, whole (T-1234).",
        "no job": " Select a job to also search payload values.",
        "no status": " Select one status to also search payload values.",
        # A search that matches whole values would confirm a guessed secret.
        "no permission": "",
    }
    actions = ["requeue_selected", "discard_selected", "export_jsonl"]
    fieldsets = [
        (None, {"fields": ("job", "batch", "index", "status", "attempts", "error_group")}),
        ("Record", {"fields": ("payload_block",)}),
        ("Error", {"fields": ("error_type", "error_block", "traceback_block")}),
        ("Deployment", {"fields": ("node_id", "node_name", "region", "version")}),
        ("Times", {"fields": ("created", "last_attempt", "resolved")}),
    ]
    created = moment_column("created_at")
    last_attempt = moment_column("last_attempt_at")
    resolved = moment_column("resolved_at")
    edited_fieldset = (
        "Record as it failed, before an operator edited it",
        {"fields": ("original_payload_block",)},
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                error_excerpt=Substr("error_message", 1, ERROR_EXCERPT_CHARS),
                # The record's first characters: which trade, which field, at a glance.
                payload_excerpt=Substr(Cast("payload", TextField()), 1, PAYLOAD_EXCERPT_CHARS),
                **shown_to(request),
            )
        )

    def _group_neighbours(self, entry):
        """The group's page and its next pending entry (older: the list runs newest first),
        one probe on (error_group, status, id)."""
        group_id = entry.error_group_id
        if group_id is None:
            return {}
        following = (
            DLQEntry.objects.filter(
                error_group_id=group_id, status=DLQEntry.Status.PENDING, pk__lt=entry.pk
            )
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        return {
            "group_page_url": reverse("errors:group", args=[group_id]),
            "next_in_group_url": reverse("admin:dlq_dlqentry_change", args=[following])
            if following
            else None,
        }

    @staticmethod
    def payload_search(request):
        """Whether the search box also looks in the records ("on"), or what it lacks: only
        within one job's entries of one status (pending by default), so the scan is that
        many rows at most; and only for who may see sensitive fields."""
        if not redaction.may_see(request.user):
            return "no permission"
        job = request.GET.get("job__id__exact", "").strip()
        if not (job.isascii() and job.isdigit()):
            return "no job"
        return "on" if effective_status(request.GET) is not None else "no status"

    def get_search_results(self, request, queryset, search_term):
        in_payload = self.payload_search(request) == "on"
        return search(queryset, search_term, in_payload=in_payload), False

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        cl.search_help_text += self.payload_search_help[self.payload_search(request)]
        return cl

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.original_payload is not None:
            return [*self.fieldsets[:2], self.edited_fieldset, *self.fieldsets[2:]]
        return self.fieldsets

    def change_view(self, request, object_id, form_url="", extra_context=None):
        entry_id = parse_id(unquote(object_id))
        run, response = self.following(request, entry_id) if entry_id else (None, None)
        if response is not None:
            return response
        context = {
            "can_requeue": self.has_requeue_permission(request),
            "can_discard": self.has_discard_permission(request),
            "requeue_run": run,
            "requeue_run_url": reverse("admin:dlq_requeuerun_change", args=[run.pk])
            if run
            else None,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # From the entry the page already loaded: no second read of it.
        if obj is not None:
            context.update(self._group_neighbours(obj))
            # Shown to whoever may view attempts, as the attempts' inline was.
            if request.user.has_perm("dlq.view_dlqattempt"):
                context["attempt_history"] = history_rows(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            cl = context["cl"]
            group = next(
                (f.group for f in cl.filter_specs if isinstance(f, ErrorGroupFilter)), None
            )
            if group is not None:
                context["subtitle"] = (
                    f"Error group #{group.pk} of {group.job_name}: {group.error_type}: "
                    + Truncator(group.template).chars(200)
                )
                context["group_page_url"] = reverse("errors:group", args=[group.pk])
            if self.has_requeue_permission(request):
                context.update(self.requeue_matching(request, cl))
        return response

    def requeue_matching(self, request, cl):
        """The "Requeue all matching" link for this list, or why there is none.

        The link carries the filters and the newest matching id now, so a run
        started from it never reaches entries that arrive after this page.
        """
        params = {k: v for k, v in request.GET.items() if v != "" and k not in VIEW_PARAMS}
        term = params.pop("q", "")
        if set(params) - set(SCOPE_PARAMS) or (term and search_batch(term) is None):
            return {
                "requeue_matching_note": "Requeue all matching follows the job, error group and "
                "batch filters (and batch:<id>); clear the other filters to use it."
            }
        if effective_status(params) != DLQEntry.Status.PENDING:
            return {"requeue_matching_note": "Only pending entries are requeued."}
        if not (set(params) - {"status__exact"}) and not term:
            return {
                "requeue_matching_note": "Filter by job, error group or batch to requeue "
                "all matching pending entries."
            }
        max_id = cl.queryset.order_by("-pk").values_list("pk", flat=True).first()
        if max_id is None:
            return {}
        if term:
            params["q"] = term
        # And the list's own query, so the pages' Cancel and their result lead back to it.
        query = urlencode(
            {**params, "max_id": max_id, "_changelist_filters": request.GET.urlencode()}
        )
        return {
            "requeue_matching_url": f"{reverse('admin:dlq_dlqentry_requeue_matching')}?{query}",
            "fix_matching_url": f"{reverse('admin:dlq_dlqentry_fix_matching')}?{query}",
        }

    @admin.action(description="Requeue the selected entries", permissions=["requeue"])
    def requeue_selected(self, request, queryset):
        pending = queryset.filter(status=DLQEntry.Status.PENDING).order_by("pk")
        ids = list(pending.values_list("pk", flat=True)[: requeue.MAX_IDS + 1])
        if not ids:
            self.message_user(request, "None of the selected entries is pending.", messages.WARNING)
            return None
        try:
            scope = RequeueScope.of_ids(ids)
        except requeue.TooManyIds:
            self.message_user(
                request,
                f"More than {requeue.MAX_IDS:,} pending entries are selected: filter the list "
                "and use “Requeue all matching” instead.",
                messages.ERROR,
            )
            return None
        try:
            run = requeue.start_run(scope, RequeueOptions(), Actor.from_request(request))
        except requeue.ScopeHeld as exc:
            self.message_user(request, run_held_message(exc), messages.ERROR)
            return None
        # Back on the list as it was filtered (the admin's redirect after an action), with
        # the way to the run's progress.
        self.message_user(request, run_started_link(run), messages.SUCCESS)
        return None

    @admin.action(description="Discard the selected entries", permissions=["discard"])
    def discard_selected(self, request, queryset):
        across = request.POST.get("select_across") == "1"
        discarded = triage.discard(
            queryset,
            actor=Actor.from_request(request),
            target=_selection(request),
            filters=effective_filters(request.GET) if across else None,
        )
        self.message_user(request, f"Discarded {discarded} pending entries.", messages.SUCCESS)

    @admin.action(description="Export the selected entries as JSON Lines", permissions=["view"])
    def export_jsonl(self, request, queryset):
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        across = request.POST.get("select_across") == "1"
        return jsonl_response(
            queryset,
            actor=Actor.from_request(request),
            target=_selection(request),
            entry_ids=None if across else [pk for pk in map(parse_id, selected) if pk is not None],
            filters=effective_filters(request.GET) if across else None,
            reveal=redaction.may_see(request.user),
        )

    @admin.display(description="error")
    def error(self, entry):
        return cut(_cut(f"{entry.error_type}: {entry.error_excerpt}", 120))

    @admin.display(description="group")
    def group_link(self, entry):
        # By id, to the group's page: joining the groups would cost every row a lookup.
        if entry.error_group_id is None:
            return "-"
        return group_page_link(entry.error_group_id, f"#{entry.error_group_id}")

    @admin.display(description="record")
    def record(self, entry):
        excerpt = entry.payload_excerpt
        if excerpt and not entry.sensitive_shown:
            excerpt = redaction.mask_json_text(excerpt, redaction.for_job(entry.job))
        return cut(excerpt and _cut(excerpt, PAYLOAD_EXCERPT_CHARS - 1))

    @admin.display(description="node")
    def node(self, entry):
        return entry.node_name or entry.node_id

    @admin.display(description="record")
    def payload_block(self, entry):
        return pretty_json(_shown(entry, entry.payload))

    @admin.display(description="original record")
    def original_payload_block(self, entry):
        return pretty_json(_shown(entry, entry.original_payload))

    @admin.display(description="message")
    def error_block(self, entry):
        return pre(entry.error_message)

    @admin.display(description="traceback")
    def traceback_block(self, entry):
        text = entry.full_traceback
        return pre(redaction.short_paths(text)) if text else "-"


def _selection(request):
    """The audit trail's words for what an action was applied to."""
    if request.POST.get("select_across") == "1":
        shown = urlencode(sorted(effective_filters(request.GET).items()))
        return f"every DLQ entry matching {shown}"
    selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
    if len(selected) <= 10:
        return "DLQ entries " + ", ".join(selected)
    return f"{len(selected)} selected DLQ entries"


# What the attempts' list holds, said on it: an original attempt still in its entry's row is
# not a row here (a list of rows and entries both would not stay fast at millions).
ATTEMPT_ROWS = (
    "Stored attempts: every requeue, and an entry's original processing once a requeue that "
    "failed replaced the entry's error. Until then the original attempt is the entry itself; "
    "an entry's page shows its whole history."
)


@admin.register(DLQAttempt)
class DLQAttemptAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "id",
        "entry_link",
        "kind",
        "outcome",
        "error_head",
        "started_by",
        "node_id",
        "when",
    )
    list_defer = ("error_message",)
    list_filter = ("kind", "outcome", "at")
    ordering = ("-id",)
    sortable_by = ("id",)
    fields = (
        "entry",
        "kind",
        "outcome",
        "started_by",
        "node_id",
        "when",
        "error_block",
        "change_block",
    )
    when = moment_column("at", "when")

    def get_queryset(self, request):
        # The list shows the error's start; the whole text stays deferred.
        return (
            super()
            .get_queryset(request)
            # No join for the job's config: only a diff shown masked asks for it (_job_config).
            .annotate(error_head=Left("error_message", 120), **shown_to(request))
        )

    @admin.display(description="error")
    def error_head(self, attempt):
        return cut(getattr(attempt, "error_head", None))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"subtitle": ATTEMPT_ROWS, **(extra_context or {})})

    @admin.display(description="DLQ entry")
    def entry_link(self, attempt):
        # By id: joining the entry would drag its payload into the list query.
        return admin_link("admin:dlq_dlqentry_change", attempt.entry_id, attempt.entry_id)

    @admin.display(description="error message")
    def error_block(self, attempt):
        return pre(attempt.error_message) if attempt.error_message else "-"

    @admin.display(description="payload change")
    def change_block(self, attempt):
        return payload_change(attempt)


def shown_to(request, job_config=None):
    """Annotations for rows shown to `request`'s user: whether they may see sensitive payload
    fields (dlq.redaction), and the job's config that names its own, when not reached by
    `entry.job`. The display methods that mask them get only the row."""
    shown = {"sensitive_shown": Value(redaction.may_see(request.user), BooleanField())}
    if job_config is not None:
        shown["job_config"] = F(job_config)
    return shown


def _job_config(attempt):
    """The config of the attempt's job: annotated on an entry's few attempts, else looked up."""
    if hasattr(attempt, "job_config"):
        return attempt.job_config
    return (
        DLQEntry.objects.filter(pk=attempt.entry_id).values_list("job__config", flat=True).first()
    )


def _shown(entry, payload):
    return payload if entry.sensitive_shown else redaction.for_job(entry.job).mask(payload)


def _cut(text, limit):
    """`text` in at most `limit` characters, with an ellipsis when cut: a list cell's
    worth, without Truncator's cost on every row."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
