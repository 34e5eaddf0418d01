"""Exporting DLQ entries as JSON Lines, streamed in id chunks so a big selection never sits in
memory, with its audit row.

Memory stays bounded however big the payloads: ids are walked EXPORT_CHUNK at a
time, the rows of a chunk read ROWS_AT_ONCE at a time (a server-side cursor on
PostgreSQL), and the lines go out in pieces of about PIECE_CHARS.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from django.utils import timezone

from common.chunks import iter_id_chunks

from .. import audit, redaction
from ..models import DLQEntry, OperatorAction

EXPORT_CHUNK = 1000
ROWS_AT_ONCE = 16  # a record is up to VELO_MAX_BODY_BYTES: 16 of them at most in memory
PIECE_CHARS = 64 * 1024
# Stored column -> exported key (the API's names where it has one).
FIELDS = {
    "id": "id",
    "job__name": "job",
    "batch_id": "batch",
    "index": "index",
    "status": "status",
    "attempts": "attempts",
    "error_type": "error_type",
    "error_message": "error_message",
    "traceback": "traceback",
    "error_group_id": "error_group",
    "node_id": "node_id",
    "node_name": "node_name",
    "region": "region",
    "version": "version",
    "created_at": "created_at",
    "last_attempt_at": "last_attempt_at",
    "resolved_at": "resolved_at",
    "payload": "payload",
    "original_payload": "original_payload",
}
# Read beside them, not exported: which fields of the payloads to mask, and the head of a
# traceback stored per failure site (the traceback column holds the rest).
JOB_CONFIG = "job__config"
TRACEBACK_HEAD = "traceback_head__text"


def _line(row, reveal):
    """One entry's line: its sensitive payload fields masked unless `reveal`, the traceback's
    paths relative (dlq.redaction)."""
    config = row.pop(JOB_CONFIG, None)
    if not reveal:
        redactor = redaction.for_config(config)
        row["payload"] = redactor.mask(row["payload"])
        row["original_payload"] = redactor.mask(row["original_payload"])
    traceback = DLQEntry.joined_traceback(row.pop(TRACEBACK_HEAD), row["traceback"])
    row["traceback"] = redaction.short_paths(traceback)
    # ensure_ascii: whatever odd text a message holds, every line is valid JSON.
    return json.dumps({FIELDS[k]: v for k, v in row.items()}, cls=DjangoJSONEncoder) + "\n"


def _lines(entries, action, reveal):
    """JSON lines, a piece at a time; the audit row gets the count when the stream ends."""
    exported, complete = 0, False
    try:
        piece, size = [], 0
        for ids in iter_id_chunks(entries, EXPORT_CHUNK):
            rows = (
                entries.filter(pk__in=ids)
                .order_by("pk")
                .values(*FIELDS, JOB_CONFIG, TRACEBACK_HEAD)
            )
            for row in rows.iterator(chunk_size=ROWS_AT_ONCE):
                line = _line(row, reveal)
                piece.append(line)
                size += len(line)
                if size >= PIECE_CHARS:
                    yield "".join(piece)
                    exported += len(piece)
                    piece, size = [], 0
        if piece:
            yield "".join(piece)
            exported += len(piece)
        complete = True
    finally:  # also when the download is abandoned half-way
        ended = "exported" if complete else "stopped after"
        OperatorAction.objects.filter(pk=action.pk).update(
            count=exported, outcome=f"{ended} {exported} entries"
        )


def jsonl_response(entries, *, actor, target, entry_ids=None, filters=None, reveal=False):
    """A download of `entries` (a queryset) as JSON Lines; the audit row is written first.
    Sensitive payload fields are masked unless `reveal`."""
    action = audit.record(
        OperatorAction.Action.EXPORT,
        actor=actor,
        target=target,
        entry_ids=entry_ids,
        filters=filters,
        outcome="started",
    )
    response = StreamingHttpResponse(
        _lines(entries, action, reveal), content_type="application/x-ndjson; charset=utf-8"
    )
    name = f"dlq-entries-{timezone.now():%Y%m%dT%H%M%SZ}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
