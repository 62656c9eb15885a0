"""Request and response shapes of the account routes (users, /me, tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from opsdesk.api.schemas import (
    Code,
    HandleValue,
    Name,
    _checked_handle,
    _Request,
    _required,
    _Response,
    _Visible,
)
from opsdesk.desk.security import MAX_REVOKE_REASON, MAX_TOKEN_NAME, CreatedToken, TokenInfo

Scope = Literal["read", "write", "admin"]
#: roles, teams or skills given in one request
MAX_REFS = 50
#: the domain's own bound on a deactivation reason
MAX_DEACTIVATE_REASON = 500

TokenName = Annotated[str, _required(MAX_TOKEN_NAME), _Visible]
RevokeReason = Annotated[str, _required(MAX_REVOKE_REASON), _Visible]
DeactivateReason = Annotated[str, _required(MAX_DEACTIVATE_REASON), _Visible]
Email = HandleValue


def _default_scopes() -> list[Scope]:
    return ["read", "write"]


class UserOut(_Response):
    id: int
    name: str
    email: str
    roles: list[str]
    teams: list[str]
    skills: list[str]
    active: bool
    presence: str
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserOut]
    next_after_id: int | None = Field(
        description="Pass as `after_id` for the next page; null on the last page."
    )


class TokenOut(_Response):
    """A token as listed: never the token itself."""

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it by.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: int | None = Field(description="The user who revoked it; null for the system.")
    revoked_reason: str | None
    active: bool = Field(description="Neither revoked nor expired.")

    @classmethod
    def of_info(cls, info: TokenInfo, now: datetime) -> Self:
        return cls.model_validate({**info.__dict__, "active": info.active(now)})


class TokenList(BaseModel):
    items: list[TokenOut]


class CreatedTokenOut(BaseModel):
    id: int
    user_id: int
    name: str
    scopes: list[str]
    expires_at: datetime
    token: str = Field(description="The bearer token. Shown this once; only its hash is kept.")

    @classmethod
    def of(cls, created: CreatedToken) -> Self:
        assert created.expires_at is not None  # every token is created with one
        return cls(
            id=created.id,
            user_id=created.user_id,
            name=created.name,
            scopes=list(created.scopes),
            expires_at=created.expires_at,
            token=created.token,
        )


class TokenInUse(BaseModel):
    id: int
    scopes: list[str]
    expires_at: datetime


class MeOut(BaseModel):
    user: UserOut
    permissions: list[str] = Field(description="What the caller's roles grant.")
    effective_permissions: list[str] = Field(
        description="What this token can use of them: narrowed by its scopes."
    )
    token: TokenInUse


class UserCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Ana Lima",
                    "email": "ana@example.com",
                    "roles": ["agent"],
                    "teams": ["billing"],
                }
            ]
        },
    )

    name: Name
    email: Email = Field(description="The sign-in e-mail (checked), unique.")
    roles: list[Code] = Field(min_length=1, max_length=MAX_REFS)
    teams: list[Code] = Field(default_factory=list, max_length=MAX_REFS)
    skills: list[Code] = Field(default_factory=list, max_length=MAX_REFS)

    @model_validator(mode="after")
    def _valid_email(self) -> Self:
        _checked_handle("email", self.email)
        return self


class RolesSet(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"roles": ["team_lead"]}]}
    )

    roles: list[Code] = Field(max_length=MAX_REFS)


class TeamsSet(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"teams": ["billing"]}]}
    )

    teams: list[Code] = Field(max_length=MAX_REFS)


class Deactivate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "left the company"}]},
    )

    reason: DeactivateReason


class Deactivated(BaseModel):
    user: UserOut
    revoked_tokens: list[int] = Field(description="The tokens revoked with the account.")


class TokenCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"name": "ci", "scopes": ["read"], "expires_in_days": 30}]},
    )

    name: TokenName = "api"
    scopes: list[Scope] = Field(
        default_factory=_default_scopes,
        min_length=1,
        max_length=3,
        description="read: GET routes; write: every other route but account management; "
        "admin: account management. Never more than this token's own scopes.",
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Default OPSDESK_TOKEN_TTL_DAYS (90); at most OPSDESK_TOKEN_MAX_TTL_DAYS "
        "(365).",
    )


class TokenRevoke(_Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "leaked in a CI log"}]},
    )

    reason: RevokeReason = "revoked"
