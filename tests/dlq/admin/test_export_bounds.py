"""The JSON Lines export streams with bounded memory, however big the payloads (issue 13 §4)."""

import json
import tracemalloc

import pytest

from dlq.admin import export
from dlq.models import OperatorAction

pytestmark = pytest.mark.django_db

LIST = "/admin/dlq/dlqentry/"
BLOB = 512 * 1024


def test_an_export_of_large_payloads_streams_in_bounded_pieces(admin_client_, make_entries):
    entries = make_entries(40, payload={"blob": "x" * BLOB})  # 20 MiB of payloads

    tracemalloc.start()
    try:
        response = admin_client_.post(
            LIST,
            {"action": "export_jsonl", "_selected_action": [entries[0].pk], "select_across": "1"},
        )
        assert response.streaming
        ids, biggest = [], 0
        for piece in response.streaming_content:
            biggest = max(biggest, len(piece))
            for line in piece.splitlines():
                row = json.loads(line)
                assert row["payload"] == {"blob": "x" * BLOB}
                ids.append(row["id"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert ids == sorted(e.pk for e in entries)
    # A piece is a line or a few, never the whole file; the rows in memory at once are
    # ROWS_AT_ONCE, not a chunk of EXPORT_CHUNK (before: 40 rows and their joined text).
    assert biggest < 2 * BLOB
    assert peak < (export.ROWS_AT_ONCE + 8) * BLOB * 2, f"peak {peak / 2**20:.1f} MiB"
    assert OperatorAction.objects.get().outcome == "exported 40 entries"
