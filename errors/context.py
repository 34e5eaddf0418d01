"""The deployment context of a node: where an error happened.

Settings build it once from the environment with `from_environ`; the rest of
the code asks `current()`, which reads settings at call time.
"""

import socket
from dataclasses import dataclass

from django.conf import settings

# For each field, the first variable that is set wins.
NODE_ID_VARS = ("NODE_ID", "HOSTNAME", "POD_NAME")
NODE_NAME_VARS = ("NODE_NAME", "SERVICE_NAME")
REGION_VARS = ("AWS_REGION", "REGION", "DEPLOYMENT_REGION")


@dataclass(frozen=True)
class DeploymentContext:
    node_id: str = ""
    node_name: str = ""
    region: str = ""
    version: str = ""

    def as_dict(self):
        # Plain attribute reads: dataclasses.asdict deep-copies, once per stored row.
        return {
            "node_id": self.node_id,
            "node_name": self.node_name,
            "region": self.region,
            "version": self.version,
        }


def _first_set(names, environ):
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return ""


def from_environ(environ, *, default_version):
    return DeploymentContext(
        # bash sets HOSTNAME without exporting it: a worker started from a shell
        # (make run) sees none of the variables, and the host's name is the node.
        node_id=_first_set(NODE_ID_VARS, environ) or socket.gethostname(),
        node_name=_first_set(NODE_NAME_VARS, environ),
        region=_first_set(REGION_VARS, environ),
        version=environ.get("APP_VERSION", "").strip() or default_version,
    )


def current():
    return settings.VELO_DEPLOYMENT
