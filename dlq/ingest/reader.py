"""Reading records from a JSON array or a JSON Lines stream, a record at a time.

The input is read in chunks, so a file of any size needs only the records
being batched in memory, and every error names the line it was found on.
"""

import json
import re

CHUNK_CHARS = 1 << 16
_WHITESPACE = re.compile(r"[ \t\r\n]*")


class BadInput(ValueError):
    """Input that cannot become records, with the line it was found on."""

    def __init__(self, line, message):
        super().__init__(f"line {line}: {message}")
        self.line = line


class _Reader:
    """A text stream read in growing chunks, knowing the line number of its read position."""

    def __init__(self, stream, max_record_chars):
        self.stream = stream
        self.max_record_chars = max_record_chars
        self.text = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def fill(self):
        """Read more (at least as much as is buffered, so re-parsing stays linear); False at EOF."""
        if self.eof:
            return False
        if len(self.text) - self.pos > self.max_record_chars:
            raise BadInput(self.line, f"a record longer than {self.max_record_chars} characters")
        chunk = self.stream.read(max(CHUNK_CHARS, len(self.text) - self.pos))
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + chunk
        self.pos = 0
        return True

    def advance(self, to):
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def line_of(self, pos):
        return self.line + self.text.count("\n", self.pos, pos)

    def peek(self):
        """The next character that is not whitespace ("" at the end), skipping up to it."""
        while True:
            self.advance(_WHITESPACE.match(self.text, self.pos).end())
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return ""

    def readline(self):
        while True:
            newline = self.text.find("\n", self.pos)
            if newline != -1 or not self.fill():
                end = len(self.text) if newline == -1 else newline + 1
                line = self.text[self.pos : end]
                self.advance(end)
                return line


def read_records(stream, *, max_record_chars):
    """('array' or 'jsonl', an iterator of (line, record)): the format is told by a leading '['."""
    reader = _Reader(stream, max_record_chars)
    if reader.peek() == "[":
        return "array", _checked(_array_values(reader))
    return "jsonl", _checked(_jsonl_values(reader))


def _checked(values):
    for line, value in values:
        if not isinstance(value, dict):
            raise BadInput(line, f"expected a JSON object, got {_json_type(value)}")
        yield line, value


def _jsonl_values(reader):
    while True:
        line_number = reader.line
        text = reader.readline()
        if not text:
            return
        if text.strip():
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                message = f"not valid JSON: {exc.msg} (column {exc.colno})"
                raise BadInput(line_number, message) from None
            yield line_number, value


def _array_values(reader):
    decoder = json.JSONDecoder()
    reader.advance(reader.pos + 1)  # the "["
    if reader.peek() == "]":
        reader.advance(reader.pos + 1)
    else:
        while True:
            if reader.peek() == "":
                raise BadInput(reader.line, "the array is not closed (no ']')")
            line = reader.line
            value, end = _decode_one(reader, decoder)
            reader.advance(end)
            yield line, value
            following = reader.peek()
            if following == ",":
                reader.advance(reader.pos + 1)
            elif following == "]":
                reader.advance(reader.pos + 1)
                break
            elif following == "":
                raise BadInput(reader.line, "the array is not closed (no ']')")
            else:
                raise BadInput(
                    reader.line, f"expected ',' or ']' after a record, found {following!r}"
                )
    if reader.peek() != "":
        raise BadInput(reader.line, "unexpected data after the array's closing ']'")


def _decode_one(reader, decoder):
    """The JSON value at the read position, reading on while the chunk end may cut it off."""
    while True:
        try:
            value, end = decoder.raw_decode(reader.text, reader.pos)
        except json.JSONDecodeError as exc:
            if reader.eof:
                raise BadInput(reader.line_of(exc.pos), f"not valid JSON: {exc.msg}") from None
        else:
            # A value that ends exactly where the text does (a number) may go on in the next chunk.
            if end < len(reader.text) or reader.eof:
                return value, end
        reader.fill()


def _json_type(value):
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return "a number"
