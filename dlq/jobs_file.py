"""Jobs as code: a TOML file of [[jobs]] tables, checked whole, applied atomically.

A key the file leaves out gets the field's default when the job is created and
is left as it is when the job is updated: the file owns the keys it names, the
admin owns the rest. Resetting left-out keys to their defaults instead would
undo an operator's admin edits on every sync (re-enabling a job they disabled
during an incident, say); to go back to a default, write it in the file.
Jobs that the file does not mention are left alone, never deleted.
Whether a job is paused is operational state, not configuration (dlq.pause):
not a key of the file, so a sync never resumes a job an operator paused.
"""

import json
import math
import tomllib
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction

from errors.rules import InvalidRules, Rules

from . import regroup
from .models import Job

# TOML has no null: for these fields 0 stands for "unbounded" (None).
ZERO_MEANS_NONE = frozenset({"dlq_max_size"})
# Grouping rules ([[jobs.grouping]] tables) are not written like a field: on a
# job with history they take effect by a regroup run, which moves the history
# with them.
GROUPING = "grouping"


class JobsFileError(ValueError):
    """A jobs file refused whole: nothing was written. Each problem names the job and field."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class SyncResult:
    name: str
    action: str  # "created", "updated" or "unchanged"
    changes: dict = field(default_factory=dict)  # field -> (old, new), for an update
    regroup: list | None = None  # new grouping rules, to apply with a regroup run


def syncable_fields():
    """The Job fields a file may set: every editable column, so a new Job field works as is."""
    return {
        f.name: f
        for f in Job._meta.concrete_fields
        if f.editable and not f.primary_key and not f.is_relation and f.name != GROUPING
    }


def load(path):
    """The job tables of a TOML file; JobsFileError if it cannot be read or is not [[jobs]]."""
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise JobsFileError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise JobsFileError([f"not valid TOML: {exc}"]) from None
    return jobs_of(document)


def jobs_of(document):
    """The list of job tables in a parsed TOML document."""
    unknown = sorted(set(document) - {"jobs"})
    if unknown:
        raise JobsFileError(
            [f"unknown top-level key(s) {', '.join(unknown)}: jobs are declared as [[jobs]] tables"]
        )
    jobs = document.get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
        raise JobsFileError(["'jobs' must be an array of tables, written [[jobs]]"])
    return jobs


def apply(declared, *, dry_run=False):
    """Create or update each declared job by name, all or nothing; a SyncResult per job.

    Every job is checked (types, then Job.full_clean()) before anything is
    written, so a bad file raises JobsFileError listing every problem and
    changes nothing. With dry_run, the results say what would happen.
    """
    fields = syncable_fields()
    names = [values.get("name") for values in declared]
    existing = Job.objects.in_bulk([n for n in names if isinstance(n, str)], field_name="name")
    problems, plans, seen = [], [], set()
    for number, values in enumerate(declared, 1):
        plan = _plan(number, values, fields, existing, seen, problems)
        if plan:
            plans.append(plan)
    if problems:
        raise JobsFileError(problems)
    if not dry_run:
        with transaction.atomic():
            for job, action, changes, _ in plans:
                if action == "created":
                    job.save()
                elif action == "updated":
                    # Only the keys that changed: a concurrent admin edit of another field survives.
                    job.save(update_fields=[*changes, "updated_at"])
    return [SyncResult(job.name, action, changes, rules) for job, action, changes, rules in plans]


def _plan(number, values, fields, existing, seen, problems):
    """(job, action, changes) for one table, or None; its problems are appended to `problems`."""
    name = values.get("name")
    label = f'job "{name}"' if isinstance(name, str) and name else f"job #{number}"
    for key in sorted(set(values) - set(fields) - {GROUPING}):
        known = ", ".join([*fields, GROUPING])
        problems.append(f'{label}, field "{key}": unknown field; known fields: {known}')
    if "name" not in values:
        problems.append(f'{label}: the field "name" is required')
        return None
    if not isinstance(name, str):
        problems.append(f'{label}, field "name": expected a string, got {_toml_type(name)}')
        return None
    if name in seen:
        problems.append(f"{label}: declared more than once in the file")
        return None
    seen.add(name)

    job = existing.get(name)
    created = job is None
    if created:
        job = Job(name=name)
    changes, bad_keys = {}, []
    for key, raw in values.items():
        if key not in fields or key == "name":
            continue
        try:
            value = _checked(fields[key], raw)
        except TypeError as exc:
            problems.append(f'{label}, field "{key}": {exc}')
            bad_keys.append(key)
            continue
        if key in ZERO_MEANS_NONE and value == 0:
            value = None
        old = getattr(job, key)
        if old != value:
            changes[key] = (old, value)
            setattr(job, key, value)
    try:
        job.full_clean(exclude=bad_keys)
    except ValidationError as exc:
        for key, errors in exc.error_dict.items():
            where = label if key == NON_FIELD_ERRORS else f'{label}, field "{key}"'
            problems.extend(f"{where}: {_message(fields.get(key), error)}" for error in errors)
    rules = _grouping(job, created, values, label, problems)
    if created:
        return job, "created", changes, None
    return job, ("updated" if changes else "unchanged"), changes, rules


def _grouping(job, created, values, label, problems):
    """New grouping rules for an existing job (to regroup with), or None; a new job gets its
    rules at once, having no history to move."""
    if GROUPING not in values:
        return None
    rules = values[GROUPING]
    where = f'{label}, field "{GROUPING}"'
    try:
        Rules.parse(rules)
    except InvalidRules as exc:
        problems.append(f"{where}: {exc}")
        return None
    if created:
        job.grouping = rules
        return None
    if Rules.parse(rules).source == Rules.parse(job.grouping).source:
        return None
    try:
        regroup.checked_rules(job, rules)
    except regroup.InvalidRegroup as exc:
        problems.append(f"{where}: {exc}")
        return None
    return rules


def _checked(model_field, value):
    """The TOML value as the field stores it; TypeError saying what was expected otherwise.

    Checked here rather than left to full_clean(), which would quietly turn
    `max_retries = "3"` or `= true` into numbers.
    """
    if isinstance(model_field, models.BooleanField):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif isinstance(model_field, models.IntegerField):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an integer"
    elif isinstance(model_field, models.FloatField):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            expected = "a finite number"
        else:
            expected = "a number (seconds for delays)"
    elif isinstance(model_field, models.JSONField):
        # Processors read their options as a dict of JSON values.
        if isinstance(value, dict):
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise TypeError(
                    "holds a TOML date, time, nan or inf, which JSON cannot store; quote it"
                ) from None
            return value
        expected = "a table"
    else:
        if isinstance(value, str):
            return value
        expected = "a string"
    raise TypeError(f"expected {expected}, got {_toml_type(value)} ({value!r})")


def _toml_type(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return "a date or time"


def _message(model_field, error):
    text = " ".join(error.messages)
    if error.code == "invalid_choice" and model_field is not None and model_field.choices:
        text += f" Choose one of: {', '.join(str(value) for value, _ in model_field.choices)}."
    return text
