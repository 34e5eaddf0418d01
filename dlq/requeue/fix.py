"""A fix for many payloads at once: an RFC 6902 JSON Patch, then conversions of field values.

A JSON Patch changes every payload the same way (`test` operations pick the
payloads it is for); a conversion works on each payload's own value, the way
a price written "662,00" becomes 662.0 in every record that has one. A run
carrying a fix applies it to each entry as it claims it, so a canary that
stops leaves the rest as they were. A payload the fix does not apply to (a
`test` fails, a path is missing, a value does not convert, or nothing would
change) is left pending untouched, and the run says so.
"""

import copy
import json
import re
from dataclasses import dataclass, replace

import jsonpatch
import jsonpointer

from .. import redaction
from ..ingest import records
from ..models import DLQEntry, Job
from .scope import InvalidRequeue

# A fix is typed by hand: a few operations, not a script.
MAX_OPERATIONS = 100
# The members each RFC 6902 operation needs besides "op" and "path".
NEEDS = {"add": "value", "replace": "value", "test": "value", "move": "from", "copy": "from"}
OPERATIONS = ("remove", *NEEDS)
# The whole fix, as JSON: its values are copied into every attempt's diff.
MAX_FIX_BYTES = 64 * 1024
# Longer text is no number a person wrote (and int() refuses 4,300 digits).
MAX_NUMBER_CHARS = 100
# How many payloads a preview shows before and after.
PREVIEW_SIZE = 10
MAX_PREVIEW = 100


class FixDoesNotApply(ValueError):
    """This payload is left as it is; the message says why."""


def _plain_number(text):
    return float(text) if "." in text else int(text)


# Numbers as people write them, each read one way only. "1,234" could be
# 1.234 or 1234 and is refused rather than guessed.
NUMBER_FORMS = (
    (re.compile(r"[+-]?\d+(\.\d+)?", re.ASCII), _plain_number),
    (re.compile(r"[+-]?\d+,(\d{1,2}|\d{4,})", re.ASCII), lambda t: float(t.replace(",", "."))),
    (
        re.compile(r"[+-]?\d{1,3}(\.\d{3})+,\d+", re.ASCII),
        lambda t: float(t.replace(".", "").replace(",", ".")),
    ),
    (
        re.compile(r"[+-]?\d{1,3}((,\d{3}){2,}(\.\d+)?|(,\d{3})+\.\d+)", re.ASCII),
        lambda t: _plain_number(t.replace(",", "")),
    ),
)


def to_number(value):
    """A number from a number, or from text such as "662,00", "1.234,56" or "1,234.56"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        for form, read in NUMBER_FORMS:
            if form.fullmatch(text):
                return read(text)
    raise FixDoesNotApply(f"{_shown(value)} is not a number Velo can read unambiguously")


def to_string(value):
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list):
        raise FixDoesNotApply(f"{_shown(value)} is not a single value to write as text")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def trim(value):
    if not isinstance(value, str):
        raise FixDoesNotApply(f"{_shown(value)} is not text to trim")
    return value.strip()


CONVERSIONS = {"number": to_number, "string": to_string, "trim": trim}


def _shown(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _refuse(message, value=None):
    raise InvalidRequeue(message, field="patch", value=value)


@dataclass(frozen=True)
class PayloadFix:
    """`patch`: RFC 6902 operations; `convert`: ({"path", "to"}, ...) applied after them."""

    patch: tuple = ()
    convert: tuple = ()

    @classmethod
    def parse(cls, patch=None, convert=None):
        """A fix checked whole (InvalidRequeue says what is wrong); None when none is given."""
        if patch is None and convert is None:
            return None
        patch = [] if patch is None else patch
        convert = [] if convert is None else convert
        if not isinstance(patch, list) or not isinstance(convert, list):
            _refuse("patch and convert are JSON lists of operations")
        if not patch and not convert:
            _refuse("the fix is empty: give at least one patch operation or conversion")
        if len(patch) + len(convert) > MAX_OPERATIONS:
            _refuse(f"at most {MAX_OPERATIONS} operations in one fix")
        if len(json.dumps([patch, convert])) > MAX_FIX_BYTES:
            _refuse(f"the fix is over {MAX_FIX_BYTES // 1024} KiB of JSON; a fix is a few edits")
        for number, operation in enumerate(patch, 1):
            _check_operation(number, operation)
        try:
            jsonpatch.JsonPatch(patch)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            _refuse(f"not a JSON Patch: {exc}")
        for number, conversion in enumerate(convert, 1):
            _check_conversion(number, conversion)
        return cls(patch=tuple(patch), convert=tuple(convert))

    @classmethod
    def from_json(cls, stored):
        """The fix a run stored with `as_json` (None for a run without one)."""
        if not stored:
            return None
        return cls(patch=tuple(stored.get("patch", ())), convert=tuple(stored.get("convert", ())))

    def as_json(self):
        return {"patch": list(self.patch), "convert": list(self.convert)}

    def apply(self, payload):
        """(the fixed payload, its diff as RFC 6902 operations with the old value as "was").

        FixDoesNotApply when a test fails, a path is missing, a value does not
        convert, the result is not a storable record, or nothing changes.
        """
        try:
            fixed = jsonpatch.apply_patch(payload, list(self.patch)) if self.patch else payload
        except jsonpatch.JsonPatchTestFailed as exc:
            raise FixDoesNotApply(f"a test does not hold: {exc}") from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise FixDoesNotApply(f"the patch does not apply: {exc}") from None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            # A path through a value that is not a container, and the like.
            raise FixDoesNotApply(f"the patch does not apply: {exc!r}") from None
        if self.convert:
            fixed = copy.deepcopy(fixed) if fixed is payload else fixed
            for conversion in self.convert:
                _convert(fixed, conversion["path"], CONVERSIONS[conversion["to"]])
        if _canonical(fixed) == _canonical(payload):  # 1 == True in Python, not in JSON
            raise FixDoesNotApply("the fix changes nothing in this payload")
        try:
            records.validate([fixed])
        except records.InvalidRecords as exc:
            raise FixDoesNotApply(str(exc).replace("record 0", "the fixed payload")) from None
        return fixed, diff(payload, fixed)

    def refuse_sensitive_reads(self):
        """InvalidRequeue when the fix reads a sensitive field (copies or moves it, tests or
        converts it): for whoever may not see those fields, such a fix would show a secret
        elsewhere in the record or in its reason. The fields are every job's: a selection
        can span jobs."""
        redactor = redaction.for_configs(Job.objects.values_list("config", flat=True))
        reads = [op["from"] for op in self.patch if op["op"] in ("copy", "move")]
        reads += [op["path"] for op in self.patch if op["op"] == "test"]
        reads += [conversion["path"] for conversion in self.convert]
        for pointer in reads:
            if redactor.reads_sensitive(pointer):
                _refuse(
                    f"{pointer} is a sensitive field (VELO_REDACT_FIELDS, a job's "
                    "redact_fields): copying, moving, testing or converting it needs the "
                    "permission to view sensitive payload fields",
                    pointer,
                )

    def describe(self):
        """In words, for the audit trail and a run's page."""
        words = [f"{op['op']} {op['path']}" for op in self.patch]
        words += [f"{c['path']} to {c['to']}" for c in self.convert]
        return "; ".join(words)


def _canonical(document):
    return json.dumps(document, sort_keys=True)


def diff(before, after):
    """RFC 6902 operations from `before` to `after`; replace and remove also carry "was".

    Each operation's path is into the document as the operations before it left
    it, so each old value is read there, not in `before`.
    """
    operations = jsonpatch.make_patch(before, after).patch
    document = copy.deepcopy(before)
    for operation in operations:
        if operation["op"] in ("replace", "remove"):
            was = jsonpointer.resolve_pointer(document, operation["path"], None)
        document = jsonpatch.apply_patch(document, [operation], in_place=True)
        if operation["op"] in ("replace", "remove"):
            operation["was"] = was
    return operations


def diff_in_words(diff):
    """Each change of a diff as a line an operator reads: 'replace /price: "662,00" → 662.0'."""

    def shown(value):
        return _shown(value, limit=80)

    lines = []
    for op in diff or ():
        if op["op"] == "replace":
            lines.append(f"replace {op['path']}: {shown(op.get('was'))} → {shown(op['value'])}")
        elif op["op"] == "remove":
            lines.append(f"remove {op['path']} (was {shown(op.get('was'))})")
        elif op["op"] == "add":
            lines.append(f"add {op['path']}: {shown(op['value'])}")
        elif "from" in op:
            lines.append(f"{op['op']} {op['from']} → {op['path']}")
        else:
            lines.append(f"{op['op']} {op['path']}")
    return lines


def _check_operation(number, operation):
    if not isinstance(operation, dict):
        _refuse(f"patch operation {number} is not a JSON object", operation)
    op = operation.get("op")
    if op not in OPERATIONS:
        _refuse(f"patch operation {number}: op must be one of {', '.join(OPERATIONS)}", op)
    if not isinstance(operation.get("path"), str):
        _refuse(f"patch operation {number} ({op}) needs a path, a JSON Pointer such as /price")
    needed = NEEDS.get(op)
    if needed and needed not in operation:
        _refuse(f"patch operation {number} ({op}) needs a {needed!r} member")
    if needed == "from" and not _is_pointer(operation["from"]):
        # jsonpatch reads `from` only when it applies the operation: checked here, a bad one
        # is a 400 at the door rather than a run that fixes no entry.
        _refuse(f"patch operation {number} ({op}): from must be a JSON Pointer such as /price")


def _is_pointer(value):
    if not isinstance(value, str):
        return False
    try:
        jsonpointer.JsonPointer(value)
    except jsonpointer.JsonPointerException:
        return False
    return True


def _check_conversion(number, conversion):
    if not isinstance(conversion, dict) or set(conversion) != {"path", "to"}:
        _refuse(f'conversion {number} must be {{"path": "/field", "to": "number"}}', conversion)
    if not isinstance(conversion["to"], str) or conversion["to"] not in CONVERSIONS:
        _refuse(f"conversion {number}: to must be one of {', '.join(CONVERSIONS)}")
    path = conversion["path"]
    if not isinstance(path, str) or not path.startswith("/"):
        _refuse(f"conversion {number}: path must be a JSON Pointer such as /price", path)
    try:
        pointer = jsonpointer.JsonPointer(path)
    except jsonpointer.JsonPointerException as exc:
        _refuse(f"conversion {number}: {exc}", path)
    if pointer.parts[-1] == "-":
        _refuse(f"conversion {number}: {path} names no value (- is past a list's end)", path)


def _convert(document, path, conversion):
    pointer = jsonpointer.JsonPointer(path)
    try:
        value = pointer.resolve(document)
    except (jsonpointer.JsonPointerException, TypeError):
        raise FixDoesNotApply(f"there is no value at {path}") from None
    if isinstance(value, jsonpointer.EndOfList):
        raise FixDoesNotApply(f"there is no value at {path}")
    pointer.set(document, conversion(value))


@dataclass(frozen=True)
class SampleFix:
    """One payload of a preview: before, after and the diff, or why the fix does not apply."""

    entry_id: int
    before: object
    after: object = None
    diff: list | None = None
    error: str = ""

    def masked(self, redactor):
        """This sample as someone who may not see sensitive fields sees it: the secrets of
        the record masked wherever the fix may have put them, its reason included."""
        return replace(
            self,
            before=redactor.mask(self.before),
            after=redactor.scrub(redactor.mask(self.after), self.before),
            diff=redactor.scrub(redactor.mask_diff(self.diff), self.before),
            error=redactor.scrub(self.error, self.before),
        )

    def as_json(self):
        if self.error:
            return {"id": self.entry_id, "applies": False, "reason": self.error}
        return {
            "id": self.entry_id,
            "applies": True,
            "before": self.before,
            "after": self.after,
            "diff": self.diff,
        }


def preview(scope, fix, size=PREVIEW_SIZE, *, reveal=True):
    """The fix on the first `size` pending entries of `scope`, changing nothing; unless
    `reveal`, the payloads' sensitive fields masked (dlq.redaction)."""
    ids = scope.next_ids(size)
    rows = DLQEntry.objects.filter(pk__in=ids).values_list("pk", "payload", "job__config")
    payloads = {pk: (payload, config) for pk, payload, config in rows}
    sample = []
    for pk in ids:
        before, config = payloads[pk]
        try:
            after, changes = fix.apply(before)
        except FixDoesNotApply as exc:
            item = SampleFix(pk, before, error=str(exc))
        else:
            item = SampleFix(pk, before, after, changes)
        sample.append(item if reveal else item.masked(redaction.for_config(config)))
    return sample
