"""Errors of the configuration core, in the terms of RFC 6241 rpc-error.

Raise the class of the error-tag (RFC 6241 appendix A): ``InvalidValue("...", path,
**{"bad-element": "x"})``. Each class carries its tag and a default error-type: "application"
where appendix A allows it, else the one it allows (lock-denied: "protocol", malformed-message:
"rpc"); errors about an operation's parameters pass ``type="protocol"``. Several errors at
once are ``RpcError(*items)``, each item built by a class's ``item``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ErrorInfo:
    """One RFC 6241 rpc-error."""

    tag: str
    message: str
    path: str | None = None
    type: str = "application"
    app_tag: str | None = None
    info: dict[str, str] = field(default_factory=dict)


class RpcError(Exception):
    """An operation failed with one or more rpc-errors; raise it from any layer below NETCONF.

    The subclasses below are the single errors of one error-tag each."""

    def __init__(self, *errors: ErrorInfo) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)

    def __reduce__(self) -> tuple[Any, ...]:
        # the subclasses take (message, path, ...): rebuild any of them from its items
        return _rebuild, (type(self), self.errors)

    @classmethod
    def of(
        cls,
        tag: str,
        message: str,
        path: str | None = None,
        type: str = "application",
        app_tag: str | None = None,
        **info: str,
    ) -> RpcError:
        """A single-error RpcError of the tag given as a string: an instance of that tag's
        class (``RpcError.of("in-use", ...)`` is an ``InUse``), or of RpcError for a tag
        without one."""
        klass = BY_TAG.get(tag)
        if klass is None:
            return RpcError(ErrorInfo(tag, message, path, type, app_tag, dict(info)))
        return klass(message, path, type, app_tag, **info)


def _rebuild(klass: type[RpcError], errors: list[ErrorInfo]) -> RpcError:
    err = klass.__new__(klass)
    RpcError.__init__(err, *errors)
    return err


class TaggedError(RpcError):
    """An RpcError of one rpc-error whose tag is the class's ``tag``."""

    tag: ClassVar[str]
    default_type: ClassVar[str] = "application"

    def __init__(self, message: str, path: str | None = None, type: str | None = None,
                 app_tag: str | None = None, **info: str) -> None:
        super().__init__(self.item(message, path, type, app_tag, **info))

    @classmethod
    def item(cls, message: str, path: str | None = None, type: str | None = None,
             app_tag: str | None = None, **info: str) -> ErrorInfo:
        """The rpc-error alone (to gather several in one RpcError); ``type`` defaults to the
        class's ``default_type``."""
        return ErrorInfo(cls.tag, message, path, type or cls.default_type, app_tag, dict(info))

    @property
    def error(self) -> ErrorInfo:
        """The one rpc-error."""
        return self.errors[0]


class InUse(TaggedError):
    """in-use: the resource is already in use (a datastore locked by another session)."""

    tag = "in-use"


class InvalidValue(TaggedError):
    """invalid-value: an unacceptable value for a parameter or a data node."""

    tag = "invalid-value"


class TooBig(TaggedError):
    """too-big: the request or response is too large to handle."""

    tag = "too-big"


class MissingAttribute(TaggedError):
    """missing-attribute: an expected attribute is missing (error-info: bad-attribute,
    bad-element)."""

    tag = "missing-attribute"


class BadAttribute(TaggedError):
    """bad-attribute: an attribute value is not correct (error-info: bad-attribute,
    bad-element)."""

    tag = "bad-attribute"


class UnknownAttribute(TaggedError):
    """unknown-attribute: an unexpected attribute (error-info: bad-attribute, bad-element)."""

    tag = "unknown-attribute"


class MissingElement(TaggedError):
    """missing-element: an expected element is missing (error-info: bad-element)."""

    tag = "missing-element"


class BadElement(TaggedError):
    """bad-element: an element value is not correct (error-info: bad-element)."""

    tag = "bad-element"


class UnknownElement(TaggedError):
    """unknown-element: an unexpected element (error-info: bad-element)."""

    tag = "unknown-element"


class UnknownNamespace(TaggedError):
    """unknown-namespace: an unexpected namespace (error-info: bad-element, bad-namespace)."""

    tag = "unknown-namespace"


class AccessDenied(TaggedError):
    """access-denied: access control refuses the request (RFC 8341)."""

    tag = "access-denied"


class LockDenied(TaggedError):
    """lock-denied: the lock cannot be granted (error-info: session-id); protocol only."""

    tag = "lock-denied"
    default_type = "protocol"


class ResourceDenied(TaggedError):
    """resource-denied: insufficient resources."""

    tag = "resource-denied"


class RollbackFailed(TaggedError):
    """rollback-failed: the request could not be completed nor undone."""

    tag = "rollback-failed"


class DataExists(TaggedError):
    """data-exists: create of data that already exists."""

    tag = "data-exists"


class DataMissing(TaggedError):
    """data-missing: the data the request needs does not exist."""

    tag = "data-missing"


class OperationNotSupported(TaggedError):
    """operation-not-supported: the operation is not implemented."""

    tag = "operation-not-supported"


class OperationFailed(TaggedError):
    """operation-failed: the request failed for a reason no other tag covers."""

    tag = "operation-failed"


class MalformedMessage(TaggedError):
    """malformed-message: the message is not well-formed or not a valid <rpc>; rpc only."""

    tag = "malformed-message"
    default_type = "rpc"


# partial-operation is deprecated by RFC 6241 (appendix A): no class, never sent.
BY_TAG: dict[str, type[TaggedError]] = {c.tag: c for c in (
    InUse, InvalidValue, TooBig, MissingAttribute, BadAttribute, UnknownAttribute,
    MissingElement, BadElement, UnknownElement, UnknownNamespace, AccessDenied, LockDenied,
    ResourceDenied, RollbackFailed, DataExists, DataMissing, OperationNotSupported,
    OperationFailed, MalformedMessage)}
