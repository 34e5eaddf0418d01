"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of this API, served as it is stored.

dlq/api/openapi.json is the one source: the tests check it against the URL
patterns and the views' answers, and schemathesis checks a live server against it.
"""

from functools import cache
from pathlib import Path

from django.http import HttpResponse
from django.views.decorators.http import require_GET

DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def document_bytes():
    """The document, read once per process."""
    return DOCUMENT.read_bytes()


@require_GET
def openapi_document(request):
    """Open like the probes: it describes the API and holds nothing secret."""
    return HttpResponse(document_bytes(), content_type="application/json")
