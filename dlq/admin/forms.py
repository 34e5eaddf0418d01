"""Forms of the DLQ admin's own pages: what "requeue all matching" acts on, its options, and an
edited payload. They turn form fields into the requeue service's own RequeueScope and
RequeueOptions, which do the checking."""

import json

from django import forms
from django.core.exceptions import ValidationError

from common.ids import MAX_ID
from errors.models import ErrorGroup

from ..models import DLQEntry, Job
from ..requeue import (
    MAX_RATE_LIMIT,
    MIN_RATE_LIMIT,
    InvalidRequeue,
    PayloadFix,
    RequeueOptions,
    RequeueScope,
)
from ..requeue.fix import CONVERSIONS
from .filters import search_batch


def _id_field():
    return forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)


# The canary a confirmation page starts with: a bad fix costs ten records, not all.
CANARY_DEFAULT = 10


class RequeueScopeForm(forms.Form):
    """The list's filters (as its URL carries them) and the newest id it showed.

    Only what a requeue run can filter on is accepted, so the run acts on
    exactly the entries the operator was looking at; anything else is refused
    rather than silently dropped.
    """

    job__id__exact = _id_field()
    error_group__id__exact = _id_field()
    batch__id__exact = _id_field()
    status__exact = forms.ChoiceField(
        required=False,
        choices=[("", "any"), (DLQEntry.Status.PENDING, "pending")],
        error_messages={"invalid_choice": "Only pending entries are requeued."},
    )
    q = forms.CharField(required=False)
    max_id = forms.IntegerField(min_value=0, max_value=MAX_ID)

    job = group = None

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.unknown = sorted(set(data) - set(self.fields))

    def clean(self):
        data = super().clean()
        if self.unknown:
            raise ValidationError(
                "A requeue run cannot filter on %(names)s; clear those filters first.",
                params={"names": ", ".join(self.unknown)},
            )
        filters = {}
        if job_id := data.get("job__id__exact"):
            self.job = Job.objects.filter(pk=job_id).only("name").first()
            if self.job is None:
                raise ValidationError("There is no job %(id)s.", params={"id": job_id})
            filters["job"] = self.job.name
        if group_id := data.get("error_group__id__exact"):
            self.group = ErrorGroup.objects.filter(pk=group_id).defer("last_message").first()
            if self.group is None:
                raise ValidationError("There is no error group %(id)s.", params={"id": group_id})
            filters["error_group"] = group_id
        batch_ids = {data.get("batch__id__exact")} - {None}
        if data.get("q"):
            if search_batch(data["q"]) is None:
                raise ValidationError(
                    "A requeue run cannot follow a text or id search; only batch:<id>."
                )
            batch_ids.add(search_batch(data["q"]))
        if len(batch_ids) > 1:
            raise ValidationError("Two different batches are named.")
        if batch_ids:
            filters["batch"] = batch_ids.pop()
        if not filters:
            raise ValidationError(
                "Filter the list by job, error group or batch first: "
                "requeue all matching never requeues every job at once."
            )
        try:
            data["scope"] = RequeueScope.matching(**filters, max_id=data.get("max_id"))
        except InvalidRequeue as exc:
            raise ValidationError(str(exc)) from None
        return data


class RequeueOptionsForm(forms.Form):
    """The options of a requeue run, as RequeueOptions names them."""

    dry_run = forms.BooleanField(
        required=False, help_text="Only count the entries; change nothing."
    )
    rate_limit = forms.FloatField(
        required=False,
        min_value=MIN_RATE_LIMIT,
        max_value=MAX_RATE_LIMIT,
        label="Rate limit",
        help_text=f"Entries per second at most, from {MIN_RATE_LIMIT} to {MAX_RATE_LIMIT:,}; "
        "the run waits between chunks without holding a worker. Empty: as fast as the "
        "workers go.",
    )
    canary_size = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        initial=CANARY_DEFAULT,
        help_text="Requeue this many entries first, and stop by itself if too many of them fail "
        "(on by default; empty: no canary).",
    )
    canary_max_failure_ratio = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="Canary failure ratio",
        help_text="The canary stops the run above this share of failures (0–1; default 0.5).",
    )

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                data["options"] = RequeueOptions(**data)
            except InvalidRequeue as exc:
                raise ValidationError(str(exc)) from None
        return data


def _json_textarea(rows, cols):
    return forms.Textarea(
        attrs={"rows": rows, "cols": cols, "spellcheck": "false", "class": "vLargeTextField"}
    )


def _json_text(text, what):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(
            "%(what)s is not valid JSON: %(why)s", params={"what": what, "why": exc}
        ) from None


class PayloadFixForm(forms.Form):
    """One change for many payloads: a JSON Patch, and/or one field set or converted.

    The field assignment is a JSON Patch "add" (which replaces a member that
    exists); a conversion works on each payload's own value. Both become the
    requeue service's PayloadFix, which does the checking.
    """

    patch = forms.CharField(
        required=False,
        strip=False,
        label="JSON Patch",
        widget=_json_textarea(rows=6, cols=80),
        help_text='RFC 6902 operations, e.g. [{"op": "test", "path": "/price", "value": '
        '"662,00"}, {"op": "replace", "path": "/price", "value": 662.0}]. A payload whose '
        "test fails is left as it is.",
    )
    field = forms.CharField(
        required=False,
        max_length=500,
        label="Field",
        help_text="A JSON Pointer such as /price or /order/lines/0/qty.",
    )
    value = forms.CharField(
        required=False,
        label="Set it to",
        help_text='A JSON value (662.0, "EUR", null, true); the field is added when missing.',
    )
    convert = forms.ChoiceField(
        required=False,
        label="Or convert it",
        choices=[("", "—"), *((name, f"to {name}") for name in CONVERSIONS)],
        help_text='"to number" reads "662,00", "1.234,56" and "1,234.56"; a value it cannot '
        "read one way only (such as 1,234) is left as it is.",
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        patch = _json_text(data["patch"], "The JSON Patch") if data["patch"].strip() else []
        if not isinstance(patch, list):
            raise ValidationError("The JSON Patch is a JSON list of operations: [{...}, ...].")
        convert = []
        field = data["field"].strip()
        if field and not field.startswith("/"):
            raise ValidationError("The field is a JSON Pointer: it starts with /, as in /price.")
        if data["value"] != "" and data["convert"]:
            raise ValidationError("Set the field to a value, or convert it; not both.")
        if (data["value"] != "" or data["convert"]) and not field:
            raise ValidationError("Name the field to set or convert (a JSON Pointer, /price).")
        if field and data["value"] != "":
            patch.append(
                {"op": "add", "path": field, "value": _json_text(data["value"], "The value")}
            )
        elif field and data["convert"]:
            convert.append({"path": field, "to": data["convert"]})
        elif field:
            raise ValidationError("Give the field a value to set, or a conversion.")
        try:
            data["fix"] = PayloadFix.parse(patch, convert)
        except InvalidRequeue as exc:
            raise ValidationError(str(exc)) from None
        return data


class FixRunOptionsForm(RequeueOptionsForm):
    """A fix run's options: its dry run is the page's preview, which shows the payloads."""

    dry_run = None


class EditPayloadForm(forms.Form):
    payload = forms.CharField(
        strip=False,
        widget=_json_textarea(rows=24, cols=100),
        help_text="The record as JSON. The original is kept; the change is recorded.",
    )

    def clean_payload(self):
        return _json_text(self.cleaned_data["payload"], "This")


class GroupingRulesForm(forms.Form):
    rules = forms.CharField(
        strip=False,
        widget=_json_textarea(rows=16, cols=100),
        help_text='A JSON list of rules: {"variables": ["pattern", ...]} turns what the patterns '
        'match (or their capture groups) into <*>; {"error_type": ..., "message": "pattern", '
        '"group": "name"} puts what matches into one group. Patterns are RE2\'s.',
    )

    def clean_rules(self):
        rules = _json_text(self.cleaned_data["rules"], "This")
        if not isinstance(rules, list):
            raise ValidationError("The rules are a JSON list.")
        return rules
