"""The demo's processors: `demo.trades`, the demo pipeline, and `demo.flaky` and `demo.slow`
for retry, crash and shutdown demos and tests."""

import time
from decimal import Decimal, InvalidOperation

from dlq.processors import Processor
from dlq.processors.builtin import RecordInvalid


class TransientFailure(Exception):
    """demo.flaky's failure: one that goes away after a few attempts."""


def trades(record, ctx):
    """The demo pipeline: a trade needs a string symbol and a numeric price."""
    if not isinstance(record, dict):
        raise RecordInvalid(f"Expected a JSON object, got {type(record).__name__}")
    for column in ("symbol", "price"):
        if column not in record:
            raise RecordInvalid(f"Missing required column '{column}'")
    if not isinstance(record["symbol"], str) or not record["symbol"]:
        raise RecordInvalid("Invalid value in 'symbol' field: expected a non-empty string")
    price = record["price"]
    if isinstance(price, bool):
        raise RecordInvalid("Invalid JSON in 'price' field")
    if not isinstance(price, int | float):
        try:
            Decimal(str(price))
        except InvalidOperation:
            raise RecordInvalid("Invalid JSON in 'price' field") from None
        raise RecordInvalid("Invalid JSON in 'price' field: expected a number, got a string")


def flaky(record, ctx):
    """Fail while ctx.attempt <= config["fail_attempts"], then succeed."""
    if ctx.attempt <= int(ctx.config.get("fail_attempts", 1)):
        raise TransientFailure(f"Transient failure (attempt {ctx.attempt})")


def slow(record, ctx):
    """Sleep config["seconds"] per record, then succeed."""
    time.sleep(float(ctx.config.get("seconds", 1.0)))


PROCESSORS = (
    Processor("demo.trades", trades, transactional=False),
    Processor("demo.flaky", flaky, transactional=False),
    Processor("demo.slow", slow, transactional=False),
)
