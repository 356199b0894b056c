"""gRPC status codes of the gNMI specification for what our operations refuse."""

from __future__ import annotations

import grpc

from nf.errors import RpcError

# RFC 6241 error-tag -> gRPC status (gNMI specification sections 3.3.4, 3.4.7)
BY_TAG = {
    "access-denied": grpc.StatusCode.PERMISSION_DENIED,
    "in-use": grpc.StatusCode.ABORTED,
    "lock-denied": grpc.StatusCode.ABORTED,
    "resource-denied": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "too-big": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "operation-not-supported": grpc.StatusCode.UNIMPLEMENTED,
    "rollback-failed": grpc.StatusCode.INTERNAL,
}


class GnmiError(Exception):
    """An operation failed with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def from_rpc_error(e: RpcError) -> GnmiError:
    """The status of an rpc-error of the datastores: the first error's tag decides;
    validation errors are INVALID_ARGUMENT (an operation-failed without path or app-tag, the
    disk refusing the config, is INTERNAL). The message lists every error with its path."""
    first = e.errors[0] if e.errors else None
    code = grpc.StatusCode.INVALID_ARGUMENT
    if first is not None:
        code = BY_TAG.get(first.tag, code)
        if first.tag == "operation-failed" and not (first.path or first.app_tag):
            code = grpc.StatusCode.INTERNAL
    text = "; ".join(f"{x.message} ({x.tag}{'/' + x.app_tag if x.app_tag else ''}"
                     f"{', at ' + x.path if x.path else ''})" for x in e.errors)
    return GnmiError(code, text or str(e))
