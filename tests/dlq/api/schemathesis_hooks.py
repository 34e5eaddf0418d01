"""Schemathesis hooks for the live run (SCHEMATHESIS_HOOKS): how an NDJSON body goes on the wire.

Schemathesis serializes JSON and text by itself; application/x-ndjson it is told here: a
list of records one JSON line each. Anything else (a negative case: not a list) has no NDJSON
form of its own, as one object on one line is a list of one record; it goes as a single line
holding a JSON array, which is not a record, so the case stays negative.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if not isinstance(value, list):
        return (json.dumps([value]) + "\n").encode()
    return "".join(json.dumps(line) + "\n" for line in value).encode()
