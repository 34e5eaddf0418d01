"""Row ids from the outside world: one rule for query strings, JSON bodies, forms and filters."""

# A bigint: larger numbers name no row, and some drivers cannot even bind them.
MAX_ID = 2**63 - 1


def parse_id(value, *, strings=True):
    """`value` as a row id (1 … MAX_ID), or None when it is not one.

    A boolean is never an id (JSON's true is not 1). A string of ASCII digits
    is one only with `strings`: query strings carry ids as text, JSON bodies
    must carry them as numbers. A string too long to be one is refused before
    int() sees it (Python refuses to convert more than 4,300 digits).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not strings or not value.isascii() or not value.isdigit() or len(value) > 100:
            return None
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        return None
    return value
