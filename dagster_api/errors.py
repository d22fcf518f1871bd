"""Failures of webserver calls as one ``DagsterApiError`` line naming the operation, and whether a restart
explains them (``transient``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError, TransportServerError

from common.errors import DkcError

TRANSIENT_HTTP_STATUSES = frozenset({500, 502, 503, 504})
"""What the apiserver's proxy answers while the webserver pod is missing, restarting or not ready."""

_MAX_MESSAGE = 400
_ROOT_REASON = re.compile(r"(\[Errno -?\d+\][^'\")]*|\[SSL[^\]]*\][^('\"]*|Read timed out[^'\")]*)")


class DagsterApiError(DkcError):
    """A webserver call failed; the message is one line naming the operation, the endpoint and the reason.

    ``transient`` is true for failures that a restarting webserver produces (no connection, 5xx from the
    proxy): waits retry every error anyway, but a caller deciding whether to retry a single call can look.
    """

    def __init__(self, operation: str, reason: str, *, transient: bool = False) -> None:
        self.operation, self.reason, self.transient = operation, one_line(reason), transient
        super().__init__(f"Dagster GraphQL {operation} failed: {self.reason}")


def one_line(text: str) -> str:
    """Collapse whitespace and cut the text, so an error never floods a test report with a stack trace."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


def describe_http_failure(response: requests.Response) -> str:
    """``HTTP 503: <reason>``, taking the reason from a Kubernetes ``Status`` body when the proxy sent one."""
    reason = response.text.strip().splitlines()[0] if response.text.strip() else (response.reason or "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
        reason = body["message"]
    return f"HTTP {response.status_code}: {reason}"


def graphql_data(operation: str, body: Any) -> dict[str, Any]:
    """The ``data`` of a GraphQL answer, or ``DagsterApiError`` with the first error's message."""
    if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
        raise DagsterApiError(operation, f"not a GraphQL answer: {str(body)[:200]}")
    errors = body.get("errors") or []
    if errors:
        first = errors[0].get("message", errors[0]) if isinstance(errors[0], dict) else errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DagsterApiError(operation, f"{first}{more}")
    return body.get("data") or {}


def expect_type(operation: str, node: Mapping[str, Any], *typenames: str) -> Mapping[str, Any]:
    """Unwrap a ``...OrError`` union: the node if its ``__typename`` is expected, else its error as an exception."""
    if node.get("__typename") in typenames:
        return node
    raise DagsterApiError(operation, f"{node.get('__typename')}: {node.get('message', 'no message')}")


def is_transient(exc: requests.RequestException) -> bool:
    """Refused or timed-out connections come and go with restarts; a certificate the CA rejects does not."""
    transient = isinstance(exc, requests.ConnectionError | requests.Timeout)
    return transient and not isinstance(exc, requests.exceptions.SSLError)


def describe_request_failure(exc: requests.RequestException) -> str:
    """``cannot connect: ConnectionError: [Errno 111] Connection refused``, without urllib3's retry wrapping."""
    found = _ROOT_REASON.search(str(exc))
    return f"cannot connect: {type(exc).__name__}: {found.group(1).strip() if found else exc}"


def describe_client_error(exc: BaseException) -> tuple[str, bool]:
    """Turn what ``DagsterGraphQLClient`` raised into (one-line reason, transient).

    It wraps transport failures in a multi-line message that repeats the whole query; the innermost cause
    carries the useful part (connection refused, the HTTP status and the proxy's reason, GraphQL errors).
    """
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if root is exc:  # an answer Dagster understood: (typename, message)
        return ": ".join(_describe_arg(arg) for arg in exc.args), False
    if isinstance(root, requests.HTTPError) and root.response is not None:
        return describe_http_failure(root.response), root.response.status_code in TRANSIENT_HTTP_STATUSES
    if isinstance(root, requests.RequestException):
        return describe_request_failure(root), is_transient(root)
    if isinstance(root, TransportQueryError):
        first = (root.errors or [{}])[0]
        return f"GraphQL error: {first.get('message', root) if isinstance(first, dict) else first}", False
    if isinstance(root, TransportServerError):
        return f"HTTP {root.code}: {root}", root.code in TRANSIENT_HTTP_STATUSES
    if isinstance(root, TransportConnectionFailed):
        return f"cannot connect: {root}", True
    return f"{type(root).__name__}: {root}", False


def _describe_arg(arg: Any) -> str:
    """DagsterGraphQLClientError carries a typename and a message, or a list of config errors with messages."""
    if isinstance(arg, list):
        return "; ".join(str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in arg)
    return str(arg)


# ---------------------------------------------------------------------------------------------------------------------
