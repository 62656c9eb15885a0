"""Errors a domain command raises; each says what went wrong and what to do next."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused; nothing was changed."""

    status = 422
    code = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing a command refers to does not exist."""

    status = 404
    code = "not-found"


class InvalidTransition(DomainError):
    """A lifecycle move the ticket lifecycle does not allow."""

    status = 409
    code = "invalid-transition"


class OwnershipViolation(DomainError):
    """A command that would leave a ticket unowned or owned by someone outside its team."""

    status = 409
    code = "ownership-violation"


class PermissionDenied(DomainError):
    """The actor lacks the permission or approver role the command needs."""

    status = 403
    code = "permission-denied"

    def __init__(self, message: str, permission: str | None = None) -> None:
        super().__init__(message)
        #: the permission refused, when one was (the audit trail records it)
        self.permission = permission


class Conflict(DomainError):
    """The command clashes with existing state (duplicate handle, already decided)."""

    status = 409
    code = "conflict"


class NoModelInForce(DomainError):
    """No operating model has been applied yet."""

    status = 409
    code = "no-model"

    def __init__(self) -> None:
        super().__init__(
            "no operating model is in force: run `opsdesk model apply FILE` "
            "(for example examples/operating-model.yaml)"
        )
