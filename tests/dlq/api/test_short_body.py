"""A body that does not arrive whole is a 400, never a stored batch or a 500 (issue 13, finding 6).

gunicorn hands the application what it got when the client closes its side early: a body
shorter than its Content-Length. A connection reset or a socket timeout while reading is an
OSError, which Django raises as UnreadablePostError. Behind deploy/nginx.conf neither
reaches gunicorn (nginx buffers the whole body first); without the proxy Velo must still say
400, in its JSON error shape.
"""

import io
import json

import pytest
from django.test import RequestFactory

from dlq.api import batches
from dlq.models import Batch
from tests.conftest import GOOD

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/orders/batches"


def short_request(auth, stream, declared):
    request = RequestFactory().post(
        URL, b"", content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    request.META["CONTENT_LENGTH"] = str(declared)
    request._stream = stream
    return request


def test_a_body_shorter_than_its_content_length_is_400_not_a_cut_off_batch(
    job, auth, assert_refused
):
    # What arrived happens to be valid JSON: accepting it would store a truncated batch.
    arrived = json.dumps([GOOD]).encode()
    request = short_request(auth, io.BytesIO(arrived), declared=len(arrived) + 500)

    body = assert_refused(batches.submit_batch(request, job_name="orders"), 400)

    assert body["error"] == "the request body is shorter than its Content-Length"
    assert body["detail"] == {"bytes": len(arrived), "declared": len(arrived) + 500}
    assert not Batch.objects.exists()


class ResetStream(io.RawIOBase):
    """A client that resets the connection while its body is read."""

    def read(self, size=-1):
        raise ConnectionResetError(104, "Connection reset by peer")


def test_a_body_whose_read_fails_is_400_not_500(job, auth, assert_refused):
    request = short_request(auth, ResetStream(), declared=100)

    body = assert_refused(batches.submit_batch(request, job_name="orders"), 400)

    assert body["error"] == "the request body could not be read"
