"""Domain errors of the attrition service.

The core (data loading, model, registry, database repositories) raises these and nothing
else; the API maps each class to an HTTP status and a problem+json body at one place
(``api/problems.py``), and the CLI prints :attr:`AttritionError.message`. Keeping HTTP out of
here lets the same errors serve the CLI, the API and the tests. Messages are in French
because they reach HR users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason why an input was refused, attached to the field (and batch row) it concerns."""

    field: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"champ": self.field, "message": self.message}
        if self.row is not None:
            out["ligne"] = self.row
        return out


class AttritionError(Exception):
    """Base class of every error the service raises on purpose.

    Parameters
    ----------
    message:
        A French sentence that can be shown to the user as is.
    errors:
        Optional per-field reasons.
    """

    def __init__(self, message: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[FieldError] = errors or []


class ConfigurationError(AttritionError):
    """The settings are incomplete or unsafe for the selected environment."""


class ValidationError(AttritionError):
    """An input is outside the domain the vocabulary accepts; ``errors`` says where."""


class NotFoundError(AttritionError):
    """A requested resource (employee, prediction, model version...) does not exist."""


class ConflictError(AttritionError):
    """The request conflicts with the current state (duplicate, concurrent change)."""


class ModelNotReadyError(AttritionError):
    """No model is active or loaded yet, so no prediction can be made."""


class ArtifactIntegrityError(AttritionError):
    """A model artifact fails its checksum or holds types we do not trust."""


class DatabaseUnavailableError(AttritionError):
    """The database cannot be reached or did not answer in time; retry later."""

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationError(AttritionError):
    """The caller did not prove who it is (missing, wrong, revoked or expired key)."""


class PermissionDeniedError(AttritionError):
    """The caller is known but its role does not allow this."""


class RateLimitedError(AttritionError):
    """Too many requests; retry after ``retry_after`` seconds.

    ``headers`` carries what is left of the quota (``RateLimit-*``), when there is one.
    """

    def __init__(
        self, message: str, *, retry_after: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers or {}


class DataFileError(AttritionError):
    """A source extract is malformed; says where, so the data owner can fix the file.

    Parameters
    ----------
    file:
        Name of the file at fault.
    line:
        1-based line number in the file (the header is line 1), or ``None`` for the file.
    column:
        Column (header) at fault, or ``None`` for the whole line or file.
    message:
        What is wrong, in French.
    """

    def __init__(self, file: str, line: int | None, column: str | None, message: str) -> None:
        where = file
        if line is not None:
            where += f", ligne {line}"
        if column is not None:
            where += f", colonne « {column} »"
        super().__init__(f"{where} : {message}")
        self.file = file
        self.line = line
        self.column = column
        self.detail = message
