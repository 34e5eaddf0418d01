"""The benchmark's own processor (loaded through VELO_PROCESSORS in every bench process).

`bench.many_errors` is demo.trades, except that a record with a "bad" field
fails with that field's name in its message: figure 9b's records fail in many
distinct messages, each of which the fingerprint keeps apart (a name made of
letters is not a variable part, as a number would be).
"""

from demo.processors import trades
from dlq.processors import processor
from dlq.processors.builtin import RecordInvalid


@processor("bench.many_errors", transactional=False)
def many_errors(record, ctx):
    bad = record.get("bad") if isinstance(record, dict) else None
    if bad is not None:
        raise RecordInvalid(f"Invalid value in '{bad}' field: expected a number")
    trades(record, ctx)
