"""Typed settings, read once from the environment and an optional ``.env`` file.

Every knob of the service lives here, so that there is one place to read what can be
configured and one validator that refuses unsafe combinations in production. Nothing is read
at import time: call :func:`get_settings` (cached) or build ``Settings(...)`` in tests.

Environment names: the well-known ``APP_ENV``, ``DATABASE_URL`` and ``LOG_LEVEL``, and
``ATTRITION_*`` for the rest; nested groups use ``__`` (``ATTRITION_API__RATE_LIMIT_PER_MINUTE``).
"""

from __future__ import annotations

import re
import socket
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from attrition.cpus import available_cpus
from attrition.errors import ConfigurationError

#: The repository root when running from a checkout (src/attrition/config.py -> ../..).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The three extracts (kept here, not imported from the data package: config loads first).
_EXTRACTS = ("extrait_sirh.csv", "extrait_eval.csv", "extrait_sondage.csv")


def default_data_dir(root: Path = PROJECT_ROOT) -> Path:
    """Where the extracts are looked for when nothing is configured.

    ``data/raw`` in the clone when it holds them, else ``../shared/data/technova`` beside the
    clone (this workplace's machines, the folder the Makefile exports), else ``data/raw``
    (where ``attrition data fetch`` downloads them).
    """
    raw = root / "data" / "raw"
    shared = root.parent / "shared" / "data" / "technova"
    for folder in (raw, shared):
        if all((folder / name).is_file() for name in _EXTRACTS):
            return folder
    return raw


#: An origin as CSP ``frame-ancestors`` takes it here: scheme and host (and port), nothing else.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")

#: Placeholder secrets that ship in .env.example and must never reach production.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "dev-secret-change-me", "secret"})
#: Words that betray a placeholder or a hand-made secret, even lengthened.
PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "dev-secret", "secret", "password",
                     "motdepasse", "example", "exemple", "placeholder", "xxxx")  # fmt: skip
#: Least estimated entropy of the production secret (bits; see :func:`secret_entropy_bits`).
MIN_SECRET_ENTROPY_BITS = 128.0


def secret_entropy_bits(secret: str) -> float:
    """A conservative estimate of a secret's entropy: its length times its per-character
    Shannon entropy (from the frequencies of its own characters).

    ``'a' * 32`` scores 0, a 43-character ``secrets.token_urlsafe(32)`` about 200.
    """
    import math
    from collections import Counter

    if not secret:
        return 0.0
    counts = Counter(secret)
    n = len(secret)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_char * n


def weak_secret_reason(secret: str, name: str = "ATTRITION_SECRET_KEY") -> str | None:
    """Why ``secret`` is unfit for production, or ``None``."""
    lowered = secret.strip().lower()
    if lowered in PLACEHOLDER_SECRETS:
        return (
            f"{name} manquant ou laissé à sa valeur par défaut : "
            "définissez un secret aléatoire (au moins 32 caractères) en production."
        )
    if len(secret) < 32:
        return f"{name} trop court : au moins 32 caractères."
    word = next((w for w in PLACEHOLDER_WORDS if w in lowered), None)
    if word is not None:
        return (
            f"{name} dérivé d'une valeur d'exemple (contient « {word} ») : "
            "générez un secret aléatoire."
        )
    bits = secret_entropy_bits(secret)
    if bits < MIN_SECRET_ENTROPY_BITS:
        return (
            f"{name} trop prévisible (entropie estimée {bits:.0f} bits, au moins "
            f"{MIN_SECRET_ENTROPY_BITS:.0f}) : générez-le avec "
            'python -c "import secrets; print(secrets.token_urlsafe(48))".'
        )
    return None


class AppEnv(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class DatabaseSettings(BaseModel):
    """Connection and pool settings; the API uses the application role, migrations the owner."""

    pool_min_size: int = 2
    """Connections kept open by each API worker."""
    pool_max_size: int = 10
    """Upper bound of connections per API worker."""
    pool_timeout_s: float = 2.0
    """How long a request waits for a free connection before a 503 (pool exhaustion)."""
    statement_timeout_ms: int = 2000
    """Bound on every statement of the application role (a locked table gives a 503, not a hang)."""
    lock_timeout_ms: int = 1000
    """Bound on lock waits of the application role."""
    connect_timeout_s: int = 2
    """TCP/socket connect timeout for new connections."""
    owner_role: str = "attrition_owner"
    """Role that owns the schema and runs migrations on the embedded server (not a superuser)."""
    app_role: str = "attrition_app"
    """PostgreSQL role the API connects as (SELECT/INSERT only on the audit trail)."""
    app_password: SecretStr | None = None
    """Password of the application role (on the embedded server: generated and kept in the
    secrets folder when unset)."""
    name: str = "attrition"
    """Database created on the embedded server."""
    seal_interval_s: float = 5.0
    """How often each API process extends the audit chain (0 disables it). Sealing takes
    every committed prediction not sealed yet, whatever its age or commit order."""
    prepared_statements: bool = True
    """Let psycopg prepare the statements the API repeats (``prepare_threshold``, its default
    5). Set false (``ATTRITION_DB__PREPARED_STATEMENTS=false``) behind PgBouncer in transaction
    mode before 1.21, where a prepared statement does not follow the client to another server
    connection ("prepared statement ... already exists"; see docs/exploitation.md)."""
    group_commit: bool = True
    """Write the predictions of concurrent requests together, one statement per group
    (``attrition.db.writer``); each response still waits for its own COMMIT. On by default:
    a third less CPU per prediction under load (docs/performance.md)."""


class ApiSettings(BaseModel):
    """HTTP-facing limits and hardening."""

    max_body_bytes: int = 1_048_576
    """Largest request body accepted (413 beyond)."""
    max_batch_size: int = 1000
    """Most employees in one batch request."""
    max_header_bytes: Annotated[int, Field(ge=1024)] = 16_384
    """Largest request line plus headers, in bytes (431 beyond), enforced by the HTTP parser."""
    max_errors_listed: Annotated[int, Field(ge=1)] = 20
    """Most errors listed in a 422 response and in its stored record (the total is given)."""
    rate_limit_per_minute: int = 600
    """Requests per minute per API key."""
    predictions_per_minute: Annotated[int, Field(ge=1)] = 6_000
    """Predictions per minute per API key (a batch of 1,000 counts 1,000); burst of as many."""
    predictions_per_day: Annotated[int, Field(ge=1)] = 100_000
    """Daily ceiling of predictions per key (UTC day) unless the key has its own
    (``attrition keys quota``)."""
    auth_failures_per_minute: int = 20
    """Failed authentications per address (and per key id) and minute before further
    failures get 429; a valid key is never refused by this."""
    sign_in_failures_per_minute: Annotated[int, Field(ge=1)] = 10
    """Failed sign-ins (web interface, password form) per address and minute, bursts of as
    many; beyond, every sign-in from that address gets 429 until the budget refills. Other
    addresses are not affected; each account also has its own throttle."""
    rejections_recorded_per_minute: Annotated[int, Field(ge=0)] = 10
    """Refusals of unauthenticated requests written to ``rejected_requests`` per address and
    minute (all of them are counted in the metrics and the access log)."""
    rejections_recorded_per_minute_total: Annotated[int, Field(ge=0)] = 120
    """The same budget for all addresses together."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or CIDR networks of the reverse proxies whose ``X-Forwarded-For`` gives the
    client address (none by default: the peer address is the client)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS (none by default)."""
    expose_docs: bool = True
    """Serve /docs, /redoc and /openapi.json."""
    fast_lane: bool = True
    """Serve the plain ``POST /v1/predictions`` without FastAPI's per-request dispatch (same
    answers; off only to compare, see ``api/lane.py``)."""
    frame_ancestors: list[str] = Field(default_factory=list)
    """Origins allowed to show the pages in a frame (CSP ``frame-ancestors``), e.g.
    ``["https://huggingface.co"]`` for the page of a Hugging Face Space; none by default.
    The API's JSON responses can never be framed."""

    @field_validator("frame_ancestors")
    @classmethod
    def _origins_only(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"origine invalide pour frame_ancestors : {origin!r} (attendu : "
                    "https://hôte[:port], sans chemin ni joker)"
                )
        return origins


class Settings(BaseSettings):
    """All settings of the service. See the table in the README and docs/installation.md."""

    model_config = SettingsConfigDict(
        env_prefix="ATTRITION_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    app_env: Annotated[AppEnv, Field(validation_alias=AliasChoices("APP_ENV", "ATTRITION_ENV"))] = (
        AppEnv.DEV
    )
    """dev, test or prod: selects safety checks, log format and defaults."""
    database_url: Annotated[
        str | None, Field(validation_alias=AliasChoices("DATABASE_URL", "ATTRITION_DATABASE_URL"))
    ] = None
    """Owner URL of an existing PostgreSQL; when unset, an embedded server is started."""
    log_level: Annotated[
        str, Field(validation_alias=AliasChoices("LOG_LEVEL", "ATTRITION_LOG_LEVEL"))
    ] = "INFO"
    """Python logging level."""
    log_json: bool | None = None
    """JSON logs (default: on in prod, off elsewhere)."""
    data_dir: Path | None = None
    """Folder of the three TechNova extracts (default: :func:`default_data_dir`)."""

    @model_validator(mode="before")
    @classmethod
    def _empty_data_dir_is_unset(cls, values: object) -> object:
        # ATTRITION_DATA_DIR= (set but empty) would otherwise mean the current directory.
        if isinstance(values, dict) and values.get("data_dir") in ("", None):
            values.pop("data_dir", None)
        return values

    pgdata: Path | None = None
    """Data directory of the embedded PostgreSQL (default: var/pgdata in the repository)."""
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    """Server-side secret for API key hashing (HMAC-SHA-256) and web sessions."""
    admin_key: SecretStr | None = None
    """Optional bootstrap admin API key, created at start-up if absent."""
    audit_key: SecretStr | None = None
    """Key of the audit trail's MACs, chain and checkpoints (``ATTRITION_AUDIT_KEY``). Never
    stored in the database. Required in production; in dev and test, generated once in the
    secrets folder."""
    secrets_dir: Path | None = None
    """Where generated secrets live, mode 0600 (default: ``secrets`` beside the embedded
    PostgreSQL's data directory, i.e. var/secrets)."""
    audit_checkpoint_dir: Path | None = None
    """Where signed checkpoints of the audit chain are published (default: var/audit)."""
    app_database_url: Annotated[
        str | None, Field(validation_alias=AliasChoices("ATTRITION_APP_DATABASE_URL"))
    ] = None
    """Application-role URL: what `attrition serve` hands to its workers instead of the owner's."""
    admin_password: SecretStr | None = None
    """Optional first password of the web interface's ``admin`` account, used at start-up when
    no active admin account exists (to be changed at first sign-in; CNIL rule applies)."""
    host: str = "127.0.0.1"
    """Interface the server binds to."""
    port: int = 8000
    """Port the server listens on."""
    replica: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64)
    """Name of this replica (``ATTRITION_REPLICA``, default: the host name): the ``replica``
    label of every metric, so that the replicas behind one load balancer stay apart."""
    workers: int = Field(default_factory=available_cpus)
    """Worker processes of `attrition serve` in prod (default: the CPUs this container may
    use, quota included; see ``attrition.cpus``)."""
    pin_workers: bool = True
    """With several workers, keep each on a CPU of its own (``attrition.api.server``)."""
    allow_ephemeral_db: bool = False
    """Accept a non-persistent embedded database in prod (demonstrations only): the data,
    the model and the audit trail are lost at each restart; /health and the pages say so."""
    seed: int = 7
    """Seed of the training recipe."""
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        import ipaddress

        for proxy in self.api.trusted_proxies:
            try:
                ipaddress.ip_network(proxy.strip())
            except ValueError:
                raise ValueError(
                    f"ATTRITION_API__TRUSTED_PROXIES : « {proxy} » n'est ni une adresse IP ni un "
                    "réseau CIDR (ex. 10.0.0.0/8)."
                ) from None
        if self.api.predictions_per_minute < self.api.max_batch_size:
            raise ValueError(
                "ATTRITION_API__PREDICTIONS_PER_MINUTE doit être au moins égal à la taille "
                f"maximale d'un lot ({self.api.max_batch_size}) : sinon un lot complet ne "
                "passerait jamais."
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_prod(self) -> Settings:
        if self.app_env is AppEnv.PROD:
            reason = weak_secret_reason(self.secret_key.get_secret_value())
            if reason is not None:
                raise ValueError(reason)
            if self.audit_key is None:
                raise ValueError(
                    "ATTRITION_AUDIT_KEY manquant : la clé des empreintes de la trace d'audit "
                    "est obligatoire en production (hors de la base, au moins 32 caractères)."
                )
            reason = weak_secret_reason(self.audit_key.get_secret_value(), "ATTRITION_AUDIT_KEY")
            if reason is not None:
                raise ValueError(reason)
            if self.database_url is None and self.app_database_url is None and self.pgdata is None:
                raise ValueError(
                    "DATABASE_URL ou ATTRITION_PGDATA requis en production : "
                    "sans eux, la base de données ne serait pas persistante."
                )
        return self

    @property
    def is_prod(self) -> bool:
        return self.app_env is AppEnv.PROD

    @property
    def json_logs(self) -> bool:
        return self.is_prod if self.log_json is None else self.log_json

    @property
    def resolved_pgdata(self) -> Path:
        return self.pgdata or PROJECT_ROOT / "var" / "pgdata"

    @property
    def resolved_secrets_dir(self) -> Path:
        return self.secrets_dir or self.resolved_pgdata.parent / "secrets"

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.audit_checkpoint_dir or self.resolved_pgdata.parent / "audit"

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or default_data_dir()


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation failure into a one-line French ConfigurationError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigurationError(
            f"Configuration invalide{f' ({loc})' if loc else ''} : {msg}"
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return load_settings()
