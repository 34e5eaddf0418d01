"""The OpenAPI 3.1 description (dlq/api/openapi.json): valid, served, complete, and true.

Valid against the official OpenAPI 3.1 schema (the OAI's, as schemathesis ships it); every
/api/v1 route Django knows is in it and every path in it resolves, so the two cannot drift;
and the answers of typical calls, successes and refusals, validate against its schemas.
"""

import json

import pytest
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from dlq.models import RequeueRun
from dlq.requeue import execute_run
from tests.conftest import BAD, GOOD
from tests.dlq.factories import fail, failing_entries, schema_job

from .openapi import DOC, REGISTRY, URI, assert_documented, template

pytestmark = pytest.mark.django_db

SUBMIT = "/api/v1/jobs/{job}/batches"
JSON = "application/json"
NDJSON = "application/x-ndjson"
# A value for each path parameter of the document, to resolve its paths.
SAMPLES = {"job": "orders", "id": "1"}


# --- the document -----------------------------------------------------------------------


def test_document_is_valid_openapi_3_1_against_the_official_schema():
    assert DOC["openapi"].startswith("3.1.")
    errors = [e.message for e in Draft202012Validator(OPENAPI_31).iter_errors(DOC)]
    assert not errors, errors


def test_every_schema_of_the_document_is_valid_json_schema_and_every_ref_resolves():
    def walk(node, where):
        if isinstance(node, dict):
            if "$ref" in node:
                REGISTRY.resolver(URI).lookup(f"{URI}{node['$ref']}")  # raises when unresolvable
            if where.endswith("/schema") or where.startswith("components/schemas/"):
                Draft202012Validator.check_schema(node)
            for key, value in node.items():
                walk(value, f"{where}/{key}" if where else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(DOC, "")


def test_schemathesis_loads_every_operation_of_the_document():
    schema = schemathesis.openapi.from_dict(DOC)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(m.upper(), p) for p, item in DOC["paths"].items() for m in item}
    assert {(o.method.upper(), o.path) for o in operations} == documented


def test_served_document_is_the_file_and_needs_no_token(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == DOC


# --- the document against the URLs -----------------------------------------------------


def django_routes(resolver=None, prefix=""):
    """Every URL pattern as `/route`, includes flattened."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from django_routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield "/" + route


def test_every_api_route_is_documented_and_every_documented_path_resolves():
    api_routes = {template(r) for r in django_routes() if r.startswith("/api/v1/")}
    documented = {template(p) for p in DOC["paths"]}

    assert api_routes - documented == set(), "routes under /api/v1 missing from openapi.json"
    for path in DOC["paths"]:
        concrete = path.format(**SAMPLES)
        match = resolve(concrete)  # Resolver404 for a documented path no view serves
        assert template(f"/{match.route}") == template(path)


@pytest.mark.parametrize("path", sorted(DOC["paths"]))
def test_documented_methods_are_the_ones_each_view_answers(client, path):
    documented = set(DOC["paths"][path])
    for method in ("get", "post", "put", "patch", "delete"):
        status = getattr(client, method)(path.format(**SAMPLES)).status_code
        if method in documented:
            assert status != 405, f"{method.upper()} {path} is documented but refused"
        else:
            assert status == 405, f"{method.upper()} {path} answers {status}, undocumented"


# --- answers against the document -------------------------------------------------------


def submit(client, auth, body, content_type=JSON, job="orders", **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    return client.post(f"/api/v1/jobs/{job}/batches", data, content_type=content_type, **headers)


def test_submitting_and_following_a_batch_answer_as_documented(client, job, auth, run_batch):
    for body, content_type in (
        ([GOOD, BAD], JSON),
        ({"records": [GOOD]}, JSON),
        (f"{json.dumps(GOOD)}\n{json.dumps(BAD)}\n", NDJSON),
    ):
        accepted = assert_documented(submit(client, auth, body, content_type), "post", SUBMIT)
    assert_documented(
        client.get(f"/api/v1/batches/{accepted['batch_id']}", HTTP_AUTHORIZATION=auth),
        "get",
        "/api/v1/batches/{id}",
    )
    finished = run_batch(job, [GOOD, BAD])
    assert_documented(
        client.get(f"/api/v1/batches/{finished.pk}", HTTP_AUTHORIZATION=auth),
        "get",
        "/api/v1/batches/{id}",
    )


def test_submit_refusals_answer_as_documented(client, job, auth, make_token, make_job, settings):
    other = make_job("other")
    limited = make_token("limited", jobs=[other])[1]
    settings.VELO_MAX_BODY_BYTES = 1000
    for response in (
        submit(client, auth, "{not json"),
        submit(client, auth, [1, 2]),
        submit(client, None, [GOOD]),
        submit(client, "Bearer nope", [GOOD]),
        submit(client, limited, [GOOD]),
        submit(client, auth, [GOOD], job="missing"),
        submit(client, auth, [GOOD] * 200),
        submit(client, auth, [GOOD], HTTP_IDEMPOTENCY_KEY="é" * 300),
    ):
        assert response.status_code in {400, 401, 403, 404, 413}, response.content
        assert_documented(response, "post", SUBMIT)


def test_dlq_pages_and_refusals_answer_as_documented(client, auth):
    job = failing_entries(3)
    first = assert_documented(
        client.get("/api/v1/dlq?limit=2", HTTP_AUTHORIZATION=auth), "get", "/api/v1/dlq"
    )
    assert len(first["results"]) == 2 and first["next"]
    assert_documented(client.get(first["next"], HTTP_AUTHORIZATION=auth), "get", "/api/v1/dlq")
    for query in (f"job={job.name}&status=pending", "cursor=bogus", "staus=pending", "job=nope"):
        assert_documented(
            client.get(f"/api/v1/dlq?{query}", HTTP_AUTHORIZATION=auth), "get", "/api/v1/dlq"
        )
    assert_documented(client.get("/api/v1/dlq"), "get", "/api/v1/dlq")


def test_requeue_patch_and_run_answer_as_documented(client, make_token):
    requeuer = make_token("requeuer", can_requeue=True)[1]
    orders = schema_job("orders")
    entries = fail(orders, 3)

    def post(url, body, auth=requeuer):
        return client.post(url, json.dumps(body), content_type=JSON, HTTP_AUTHORIZATION=auth)

    preview = post(
        "/api/v1/dlq/patch",
        {
            "job": "orders",
            "patch": [{"op": "add", "path": "/symbol", "value": "X"}],
            "dry_run": True,
        },
    )
    assert_documented(preview, "post", "/api/v1/dlq/patch")
    started = assert_documented(
        post("/api/v1/dlq/requeue", {"ids": [e.pk for e in entries]}), "post", "/api/v1/dlq/requeue"
    )
    held = post("/api/v1/dlq/requeue", {"job": "orders"})
    assert held.status_code == 409
    assert_documented(held, "post", "/api/v1/dlq/requeue")
    for body, auth in (({"job": "orders"}, make_token("reader")[1]), ({"nope": 1}, requeuer)):
        assert_documented(post("/api/v1/dlq/requeue", body, auth), "post", "/api/v1/dlq/requeue")

    run_url = f"/api/v1/requeue-runs/{started['run_id']}"
    assert_documented(
        client.get(run_url, HTTP_AUTHORIZATION=requeuer), "get", "/api/v1/requeue-runs/{id}"
    )
    execute_run(RequeueRun.objects.get().pk)
    assert_documented(
        client.get(run_url, HTTP_AUTHORIZATION=requeuer), "get", "/api/v1/requeue-runs/{id}"
    )
    assert_documented(
        client.get("/api/v1/requeue-runs/999", HTTP_AUTHORIZATION=requeuer),
        "get",
        "/api/v1/requeue-runs/{id}",
    )


def test_error_groups_and_stats_answer_as_documented(client, auth):
    failing_entries(2)
    groups = assert_documented(
        client.get("/api/v1/errors?status=unresolved", HTTP_AUTHORIZATION=auth),
        "get",
        "/api/v1/errors",
    )
    assert groups["results"]
    assert_documented(
        client.get("/api/v1/errors?limit=0", HTTP_AUTHORIZATION=auth), "get", "/api/v1/errors"
    )
    stats = assert_documented(
        client.get("/api/v1/errors/stats", HTTP_AUTHORIZATION=auth), "get", "/api/v1/errors/stats"
    )
    assert stats["top"]


def test_probes_answer_as_documented(client):
    for path in ("/live", "/ready", "/health"):
        assert_documented(client.get(path), "get", path)


# --- what the schemathesis run found (tests/dlq/api/test_openapi_live.py) ---------------


def test_a_conversion_to_a_non_string_is_a_400_not_a_500(client, make_token):
    requeuer = make_token("requeuer", can_requeue=True)[1]
    fail(schema_job("orders"), 1)
    body = {"job": "orders", "convert": [{"path": "/price", "to": {}}]}

    response = client.post(
        "/api/v1/dlq/patch", json.dumps(body), content_type=JSON, HTTP_AUTHORIZATION=requeuer
    )

    assert response.status_code == 400, response.content
    assert "to must be one of" in assert_documented(response, "post", "/api/v1/dlq/patch")["error"]


@pytest.mark.parametrize("op", ["move", "copy"])
def test_a_move_or_copy_from_what_is_not_a_json_pointer_is_a_400_and_starts_no_run(
    client, make_token, op
):
    requeuer = make_token("requeuer", can_requeue=True)[1]
    fail(schema_job("orders"), 1)
    body = {"job": "orders", "patch": [{"op": op, "path": "/symbol", "from": "price"}]}

    response = client.post(
        "/api/v1/dlq/patch", json.dumps(body), content_type=JSON, HTTP_AUTHORIZATION=requeuer
    )

    assert response.status_code == 400, response.content
    assert "from must be a JSON Pointer" in response.json()["error"]
    assert not RequeueRun.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/api/v1/jobs/orders/batches", "POST"),
        ("delete", "/api/v1/batches/1", "GET"),
        ("trace", "/api/v1/dlq", "GET"),
        ("put", "/api/v1/dlq/requeue", "POST"),
        ("get", "/api/v1/dlq/patch", "POST"),
        ("post", "/api/v1/requeue-runs/1", "GET"),
        ("post", "/api/v1/errors/stats", "GET"),
        ("post", "/api/v1/openapi.json", "GET"),
    ],
)
def test_a_json_405_keeps_its_allow_header(client, auth, method, path, allowed):
    response = client.generic(method.upper(), path, HTTP_AUTHORIZATION=auth)

    assert response.status_code == 405
    assert response["Allow"] == allowed  # RFC 9110: a 405 says what is allowed
    assert response.json()["detail"] == {"allowed": [allowed]}


@pytest.mark.parametrize("path", ["/live", "/ready", "/health"])
def test_a_probe_answers_an_unsafe_method_with_a_405_not_a_csrf_403(path):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).generic("QUERY", path)

    assert response.status_code == 405
    assert response["Allow"] == "GET"
