"""The API's OpenAPI document as tests read it: a response checked against what it documents."""

import json
import re
from datetime import datetime
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from dlq.api.openapi import DOCUMENT

DOC = json.loads(DOCUMENT.read_text())
URI = "urn:velo:openapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOC, DRAFT202012))
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    """RFC 3339 with a zone, as the API writes its times (jsonschema checks it only with extras)."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri")
def _uri(value):
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


# `{job}` in the document, `<str:job_name>` in Django: both are one path segment.
PARAMETER = re.compile(r"\{[^}]*\}|<[^>]*>")


def pointer(*parts):
    """A JSON Pointer into the document (RFC 6901 escapes)."""
    return "/".join(["#", *(str(p).replace("~", "~0").replace("/", "~1") for p in parts)])


def resolve(node):
    """`node`, or what its `$ref` (into the document) names."""
    while "$ref" in node:
        node = REGISTRY.resolver(URI).lookup(f"{URI}{node['$ref']}").contents
    return node


def documented_response(method, path, status):
    """(the response object the document gives `method path` for `status`, where it is in the
    document as a JSON Pointer); AssertionError when there is none."""
    operation = DOC["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{method} {path} is not in the document"
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path} does not document a {status}"
    found = responses[str(status)]
    where = pointer("paths", path, method.lower(), "responses", status)
    if "$ref" in found:
        where = found["$ref"]
    return resolve(found), where


def assert_documented(response, method, path):
    """Check a Django test response: its status is documented for `method path`, and its body
    is JSON that validates against the documented schema. Returns the body."""
    documented, where = documented_response(method, path, response.status_code)
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert "application/json" in documented["content"], f"{where} documents no JSON body"
    schema = {"$ref": f"{URI}{where}/content/application~1json/schema"}
    validator = Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)
    body = json.loads(response.content)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in validator.iter_errors(body)
    ]
    assert not errors, f"{method} {path} {response.status_code} is not as documented: {errors}"
    return body


def template(path):
    """A path with each parameter as `{}`, to compare the document's with Django's routes."""
    return PARAMETER.sub("{}", path)
