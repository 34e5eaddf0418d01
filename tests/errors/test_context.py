"""The deployment context: which environment variable names the node, region and version."""

import socket

import pytest

from errors.context import DeploymentContext, from_environ


def context(**environ):
    return from_environ(environ, default_version="9.9.9")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"NODE_ID": "n1", "HOSTNAME": "h1", "POD_NAME": "p1"}, "n1"),
        ({"HOSTNAME": "h1", "POD_NAME": "p1"}, "h1"),
        ({"POD_NAME": "p1"}, "p1"),
        ({"NODE_ID": "  "}, socket.gethostname()),
        ({}, socket.gethostname()),
    ],
)
def test_node_id_comes_from_node_id_then_hostname_then_pod_name_then_the_host(environ, expected):
    assert context(**environ).node_id == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"NODE_NAME": "worker-a", "SERVICE_NAME": "velo"}, "worker-a"),
        ({"SERVICE_NAME": "velo"}, "velo"),
        ({}, ""),
    ],
)
def test_node_name_comes_from_node_name_then_service_name(environ, expected):
    assert context(**environ).node_name == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_REGION": "eu-west-1", "REGION": "r", "DEPLOYMENT_REGION": "d"}, "eu-west-1"),
        ({"REGION": "r", "DEPLOYMENT_REGION": "d"}, "r"),
        ({"DEPLOYMENT_REGION": "d"}, "d"),
        ({}, ""),
    ],
)
def test_region_comes_from_aws_region_then_region_then_deployment_region(environ, expected):
    assert context(**environ).region == expected


def test_version_comes_from_app_version():
    assert context(APP_VERSION="1.4.2").version == "1.4.2"


def test_version_falls_back_to_the_default():
    assert context().version == "9.9.9"


def test_blank_values_are_skipped():
    """An exported-but-empty variable (`NODE_ID=`) must not hide the next one."""
    found = context(
        NODE_ID="",
        HOSTNAME="  ",
        POD_NAME="pod-7",
        NODE_NAME="\t",
        SERVICE_NAME="velo",
        AWS_REGION="",
        REGION=" ",
        DEPLOYMENT_REGION="eu",
        APP_VERSION="  ",
    )
    assert found == DeploymentContext(
        node_id="pod-7", node_name="velo", region="eu", version="9.9.9"
    )


def test_values_are_stripped():
    assert context(NODE_ID="  n1\n").node_id == "n1"


def test_unrelated_variables_are_ignored():
    assert context(PATH="/usr/bin", HOME="/root") == DeploymentContext(
        node_id=socket.gethostname(), version="9.9.9"
    )


def test_as_dict_has_the_four_fields_the_models_store():
    assert context(NODE_ID="n1").as_dict() == {
        "node_id": "n1",
        "node_name": "",
        "region": "",
        "version": "9.9.9",
    }
