"""API keys, scopes and the principal a request acts as.

A key reads ``tf_<key_id>_<secret>``: ``key_id`` is a short public id (12 hex digits,
shown in listings and logs), ``secret`` 256 random bits from :func:`secrets.token_urlsafe`.
Only the SHA-256 of the secret is stored. A fast hash is enough because the secret is
random: a guess among 2**256 secrets stays infeasible at any hash speed, whereas slow
password hashes (bcrypt, Argon2) exist to protect low-entropy human passwords (the
team's research notes, "API keys": SHA-256 suffices for random keys of 128+ bits). A key
is looked up by its id and its hash compared in constant time
(:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.errors import AuthenticationError, PermissionDeniedError, RequestError
from shared.persistence import keys as key_store
from shared.persistence.db import get_engine

GOALS_SUBMIT = "goals:submit"
GOALS_READ = "goals:read"
GOALS_CANCEL = "goals:cancel"
PLANS_SUBMIT = "plans:submit"  # ready-made plans: run without a planner, so off by default
KEYS_ADMIN = "keys:admin"
STEPS_APPROVE = "steps:approve"  # approve or reject risky steps: a person's decision
METRICS_READ = "metrics:read"  # GET /metrics: fleet-wide figures of every tenant
MEMORY_READ = "memory:read"  # recall and read the tenant's long-term memory
MEMORY_WRITE = "memory:write"  # remember and delete facts in it
ALL_SCOPES = (GOALS_SUBMIT, GOALS_READ, GOALS_CANCEL, PLANS_SUBMIT, KEYS_ADMIN, STEPS_APPROVE,
              METRICS_READ, MEMORY_READ, MEMORY_WRITE)
# Memory is on by default: a goal's own ``remember``/``recall`` steps reach the same data.
DEFAULT_SCOPES = (GOALS_SUBMIT, GOALS_READ, GOALS_CANCEL, MEMORY_READ, MEMORY_WRITE)

KEY_PREFIX = "tf"
KEY_ID_BYTES = 6  # 12 hex digits: a public label, not a secret
SECRET_BYTES = 32  # 256 bits (at least 128 are required)
_MAX_KEY_LENGTH = 200
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a tenant, the scopes granted, and the key used (None when
    authentication is off)."""

    tenant_id: uuid.UUID
    tenant_name: str
    scopes: frozenset[str]
    key_id: str | None = None

    def require(self, scope: str) -> None:
        """Raises PermissionDeniedError unless the principal holds ``scope``."""
        if scope not in self.scopes:
            raise PermissionDeniedError(f"this API key lacks the scope {scope!r}")


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is the full secret key, shown once and stored nowhere."""

    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    key: str


def default_principal() -> Principal:
    """The principal of every request while authentication is off: tenant ``default``,
    all scopes."""
    return Principal(key_store.DEFAULT_TENANT_ID, key_store.DEFAULT_TENANT_NAME,
                     frozenset(ALL_SCOPES))


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, deduplicated in their canonical order.

    Raises:
        RequestError: A scope is not one of :data:`ALL_SCOPES`.
    """
    wanted = set(scopes)
    unknown = sorted(wanted - set(ALL_SCOPES))
    if unknown:
        raise RequestError(f"unknown scope(s) {', '.join(unknown)} "
                           f"(available: {', '.join(ALL_SCOPES)})")
    return tuple(s for s in ALL_SCOPES if s in wanted)


def create_key(*, tenant: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> NewKey:
    """Create a key for ``tenant`` (the tenant is created if new).

    Returns:
        The key, whose full text exists only in this return value.

    Raises:
        RequestError: A scope is unknown or the tenant name is blank.
    """
    if not tenant.strip():
        raise RequestError("a tenant name must not be blank")
    granted = check_scopes(scopes)
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    with get_engine().begin() as connection:
        tenant_id = key_store.ensure_tenant(connection, name=tenant)
        key_store.insert_key(connection, key_id=key_id, tenant_id=tenant_id,
                             secret_sha256=_hash_secret(secret), scopes=granted)
    return NewKey(key_id=key_id, tenant=tenant, scopes=granted,
                  key=f"{KEY_PREFIX}_{key_id}_{secret}")


def verify_key(presented: str) -> Principal:
    """The principal of an API key.

    Raises:
        AuthenticationError: The key is malformed, unknown, wrong or revoked.
    """
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret or len(presented) > _MAX_KEY_LENGTH:
        raise AuthenticationError("invalid API key")
    with get_engine().begin() as connection:
        row = key_store.find_key(connection, key_id=key_id)
        expected = row["secret_sha256"] if row else _DUMMY_HASH
        if not hmac.compare_digest(expected, _hash_secret(secret)) or row is None:
            raise AuthenticationError("invalid API key")
        if row["revoked_at"] is not None:
            raise AuthenticationError("this API key has been revoked")
        key_store.mark_used(connection, key_id=key_id)
    return Principal(row["tenant_id"], row["tenant_name"], frozenset(row["scopes"]), key_id)


def list_keys(*, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every key's id, tenant, scopes and times (see :func:`key_store.list_keys`)."""
    with get_engine().connect() as connection:
        return key_store.list_keys(connection, tenant=tenant)


def revoke_key(key_id: str) -> bool:
    """Revoke a key at once; False if no key has this id."""
    with get_engine().begin() as connection:
        return key_store.revoke_key(connection, key_id=key_id) is not None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False
