"""The database schema as typed SQLAlchemy 2.0 models.

Three dataset tables keep the normalisation of the sources (one per extract, one row per
employee); ``employee_features`` (a view, created by migration) joins them into the model's
input shape. The registry holds every model version with its artifact, so that every API
replica loads the model from the database. ``prediction_inputs`` and ``predictions`` are the
append-only audit trail (a trigger refuses UPDATE and DELETE); ``rejected_requests`` records
the failed exchanges. Domains come from :mod:`attrition.data.vocabulary`, so the database
refuses what the API refuses.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from attrition.data import vocabulary as v
from attrition.db.base import REFERENCES, Base


def _enum(py_enum: type[enum.Enum], name: str) -> Enum:
    return Enum(
        py_enum, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True
    )


def _range(column: str) -> CheckConstraint:
    f = v.FEATURES_BY_NAME[column]
    return CheckConstraint(f"{column} BETWEEN {f.low:g} AND {f.high:g}", name=column)


class Role(enum.StrEnum):
    ADMIN = "admin"
    PREDICTEUR = "predicteur"
    AUDITEUR = "auditeur"
    RH = "rh"


class PredictionSource(enum.StrEnum):
    API = "api"
    BATCH = "batch"
    EMPLOYEE = "employee"
    WEB = "web"


class PredictionLabel(enum.StrEnum):
    DEPART = "depart"
    RESTE = "reste"


class RiskLevel(enum.StrEnum):
    FAIBLE = "faible"
    MOYEN = "moyen"
    ELEVE = "eleve"


GENRE = _enum(v.Genre, "genre")
STATUT_MARITAL = _enum(v.StatutMarital, "statut_marital")
DEPARTEMENT = _enum(v.Departement, "departement")
POSTE = _enum(v.Poste, "poste")
DOMAINE_ETUDE = _enum(v.DomaineEtude, "domaine_etude")
FREQUENCE_DEPLACEMENT = _enum(v.FrequenceDeplacement, "frequence_deplacement")
ROLE = _enum(Role, "api_role")
SOURCE = _enum(PredictionSource, "prediction_source")
LABEL = _enum(PredictionLabel, "prediction_label")
RISK = _enum(RiskLevel, "risk_level")

TZ = DateTime(timezone=True)


class Employee(Base):
    """One employee of the HR information system (extrait_sirh.csv)."""

    __tablename__ = "employees"
    __table_args__ = (
        _range("age"),
        _range("revenu_mensuel"),
        _range("nombre_experiences_precedentes"),
        _range("annees_experience_totale"),
        _range("annees_dans_l_entreprise"),
        _range("annees_dans_le_poste_actuel"),
        CheckConstraint("nombre_heures_travaillees BETWEEN 0 AND 100", name="heures"),
        CheckConstraint("annees_dans_l_entreprise <= annees_experience_totale", name="anciennete"),
        CheckConstraint("annees_dans_le_poste_actuel <= annees_dans_l_entreprise", name="poste"),
        CheckConstraint("annees_experience_totale <= age - 14", name="experience_age"),
    )

    id_employee: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    age: Mapped[int] = mapped_column(SmallInteger)
    genre: Mapped[v.Genre] = mapped_column(GENRE)
    revenu_mensuel: Mapped[int] = mapped_column(Integer)
    statut_marital: Mapped[v.StatutMarital] = mapped_column(STATUT_MARITAL)
    departement: Mapped[v.Departement] = mapped_column(DEPARTEMENT)
    poste: Mapped[v.Poste] = mapped_column(POSTE)
    nombre_experiences_precedentes: Mapped[int] = mapped_column(SmallInteger)
    nombre_heures_travaillees: Mapped[int] = mapped_column(SmallInteger)
    annees_experience_totale: Mapped[int] = mapped_column(SmallInteger)
    annees_dans_l_entreprise: Mapped[int] = mapped_column(SmallInteger)
    annees_dans_le_poste_actuel: Mapped[int] = mapped_column(SmallInteger)
    loaded_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    review: Mapped[PerformanceReview] = relationship(back_populates="employee")
    survey: Mapped[SurveyResponse] = relationship(back_populates="employee")


class PerformanceReview(Base):
    """The yearly performance review of one employee (extrait_eval.csv)."""

    __tablename__ = "performance_reviews"
    __table_args__ = (
        _range("satisfaction_employee_environnement"),
        _range("note_evaluation_precedente"),
        _range("niveau_hierarchique_poste"),
        _range("satisfaction_employee_nature_travail"),
        _range("satisfaction_employee_equipe"),
        _range("satisfaction_employee_equilibre_pro_perso"),
        _range("note_evaluation_actuelle"),
        _range("augmentation_salaire_precedente"),
        CheckConstraint("eval_number = 'E_' || id_employee", name="eval_number"),
    )

    id_employee: Mapped[int] = mapped_column(
        ForeignKey("employees.id_employee", ondelete="CASCADE"), primary_key=True
    )
    eval_number: Mapped[str] = mapped_column(String(16), unique=True)
    satisfaction_employee_environnement: Mapped[int] = mapped_column(SmallInteger)
    note_evaluation_precedente: Mapped[int] = mapped_column(SmallInteger)
    niveau_hierarchique_poste: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_nature_travail: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_equipe: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_equilibre_pro_perso: Mapped[int] = mapped_column(SmallInteger)
    note_evaluation_actuelle: Mapped[int] = mapped_column(SmallInteger)
    heures_supplementaires: Mapped[bool] = mapped_column(Boolean)
    augmentation_salaire_precedente: Mapped[Decimal] = mapped_column(Numeric(5, 2))

    employee: Mapped[Employee] = relationship(back_populates="review")


class SurveyResponse(Base):
    """The survey answers of one employee, and the target (extrait_sondage.csv)."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        _range("nombre_participation_pee"),
        _range("nb_formations_suivies"),
        _range("distance_domicile_travail"),
        _range("niveau_education"),
        _range("annees_depuis_la_derniere_promotion"),
        _range("annees_sous_responsable_actuel"),
        CheckConstraint("nombre_employes_sous_responsabilite >= 0", name="sous_responsabilite"),
        CheckConstraint("ltrim(code_sondage, '0')::int = id_employee", name="code_sondage"),
    )

    id_employee: Mapped[int] = mapped_column(
        ForeignKey("employees.id_employee", ondelete="CASCADE"), primary_key=True
    )
    code_sondage: Mapped[str] = mapped_column(String(16), unique=True)
    a_quitte_l_entreprise: Mapped[bool] = mapped_column(Boolean)
    nombre_participation_pee: Mapped[int] = mapped_column(SmallInteger)
    nb_formations_suivies: Mapped[int] = mapped_column(SmallInteger)
    nombre_employes_sous_responsabilite: Mapped[int] = mapped_column(SmallInteger)
    distance_domicile_travail: Mapped[int] = mapped_column(SmallInteger)
    niveau_education: Mapped[int] = mapped_column(SmallInteger)
    domaine_etude: Mapped[v.DomaineEtude] = mapped_column(DOMAINE_ETUDE)
    ayant_enfants: Mapped[bool] = mapped_column(Boolean)
    frequence_deplacement: Mapped[v.FrequenceDeplacement] = mapped_column(FREQUENCE_DEPLACEMENT)
    annees_depuis_la_derniere_promotion: Mapped[int] = mapped_column(SmallInteger)
    annees_sous_responsable_actuel: Mapped[int] = mapped_column(SmallInteger)

    employee: Mapped[Employee] = relationship(back_populates="survey")


class ModelVersion(Base):
    """One trained model: its artifact, checksum, metrics and provenance."""

    __tablename__ = "model_versions"
    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "is_active",
            unique=True,
            postgresql_where=text("is_active"),
        ),
        CheckConstraint("threshold > 0 AND threshold < 1", name="threshold"),
        CheckConstraint("length(artifact_sha256) = 64", name="sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    algorithm: Mapped[str] = mapped_column(String(64))
    hyper_parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    features: Mapped[list[str]] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    threshold: Mapped[float] = mapped_column(Double)
    threshold_criterion: Mapped[str] = mapped_column(Text)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(64))
    library_versions: Mapped[dict[str, str]] = mapped_column(JSONB)
    artifact: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    serving_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB, deferred=True)
    """The compiled scoring arrays, so API workers serve without importing scikit-learn."""
    serving_sha256: Mapped[str | None] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(TZ)


class ModelActivation(Base):
    """One activation of a model version through the acceptance rule (append-only).

    ``refusals`` lists the rules the version broke (empty when accepted); ``forced`` says
    that it was activated anyway, with ``reason``.
    """

    __tablename__ = "model_activations"
    __table_args__ = (CheckConstraint("NOT forced OR length(trim(reason)) > 0", name="reason"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    activated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    activated_by: Mapped[str] = mapped_column(String(64), server_default=text("current_user"))
    forced: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    refusals: Mapped[list[str]] = mapped_column(JSONB)
    checks: Mapped[dict[str, Any]] = mapped_column(JSONB)


class EmployeeOutcome(Base):
    """What actually happened to an employee, recorded by HR (append-only).

    ``parti``: left on ``date_constat``; ``present``: still in the company on that date. A
    correction is a new row; the realized-performance report reads the latest facts.
    """

    __tablename__ = "employee_outcomes"
    __table_args__ = (
        CheckConstraint("statut IN ('parti', 'present')", name="statut"),
        CheckConstraint("source IN ('api', 'cli', 'import')", name="source"),
        UniqueConstraint("id_employee", "statut", "date_constat"),
        Index("ix_employee_outcomes_id_employee", "id_employee"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    id_employee: Mapped[int] = mapped_column(Integer)
    statut: Mapped[str] = mapped_column(String(16))
    date_constat: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class ApiKey(Base):
    """An API client: only a keyed hash of its key is stored, never the key."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("daily_quota > 0", name="daily_quota_positive"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(ROLE)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    """Predictions a day allowed to this key; NULL: the server's default."""


class User(Base):
    """A person who signs in to the web interface with a login and a password.

    Only an Argon2id hash of the password is stored. ``api_key_id`` is the person's identity in
    the audit trail: a key row whose secret is never issued, so that predictions, rejections
    and the owner rule stay keyed by ``api_keys.id`` for people and machines alike.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("login ~ '^[a-z0-9][a-z0-9._-]{1,63}$'", name="login"),
        CheckConstraint("failed_attempts >= 0", name="failed_attempts"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(ROLE)
    password_hash: Mapped[str] = mapped_column(Text)
    must_change_password: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), unique=True)
    failed_attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    password_changed_at: Mapped[datetime | None] = mapped_column(TZ)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(TZ)
    disabled_at: Mapped[datetime | None] = mapped_column(TZ)


class WebSession(Base):
    """A signed-in browser: only the SHA-256 of its random token is stored.

    Sign-out, a disabled account or an admin's revocation set ``revoked_at``; the token is
    checked against this row on every request, so a copied cookie dies with the session.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        Index("ix_web_sessions_user_id", "user_id"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


_INPUTS = "prediction_inputs.id"  # a reference checked by trigger, not a foreign key (0016)
_JOIN = "PredictionInput.id == foreign(Prediction.input_id)"


class PredictionInput(Base):
    """What was sent to the model: every feature typed, plus the raw payload (append-only)."""

    __tablename__ = "prediction_inputs"
    __table_args__ = (
        Index("ix_prediction_inputs_received_at_id", "received_at", "id"),
        Index("ix_prediction_inputs_api_key_id_id", "api_key_id", "id"),
        Index("ix_prediction_inputs_id_employee_id", "id_employee", "id"),
        Index("ix_prediction_inputs_batch_id", "batch_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    request_id: Mapped[str] = mapped_column(String(64))
    """Generated by the server for every request (never chosen by the client)."""
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    """The client's ``X-Request-ID``, if it sent one (kept apart, echoed back)."""
    api_key_id: Mapped[int | None] = mapped_column(Integer, info={REFERENCES: "api_keys.id"})
    """The key that sent it: checked once per statement, not a foreign key (migration 0015)."""
    source: Mapped[PredictionSource] = mapped_column(SOURCE)
    id_employee: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    batch_row: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    age: Mapped[int] = mapped_column(SmallInteger)
    genre: Mapped[v.Genre | None] = mapped_column(GENRE)
    revenu_mensuel: Mapped[int] = mapped_column(Integer)
    statut_marital: Mapped[v.StatutMarital | None] = mapped_column(STATUT_MARITAL)
    departement: Mapped[v.Departement] = mapped_column(DEPARTEMENT)
    poste: Mapped[v.Poste] = mapped_column(POSTE)
    nombre_experiences_precedentes: Mapped[int] = mapped_column(SmallInteger)
    annees_experience_totale: Mapped[int] = mapped_column(SmallInteger)
    annees_dans_l_entreprise: Mapped[int] = mapped_column(SmallInteger)
    annees_dans_le_poste_actuel: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_environnement: Mapped[int] = mapped_column(SmallInteger)
    note_evaluation_precedente: Mapped[int] = mapped_column(SmallInteger)
    niveau_hierarchique_poste: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_nature_travail: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_equipe: Mapped[int] = mapped_column(SmallInteger)
    satisfaction_employee_equilibre_pro_perso: Mapped[int] = mapped_column(SmallInteger)
    note_evaluation_actuelle: Mapped[int] = mapped_column(SmallInteger)
    heures_supplementaires: Mapped[bool] = mapped_column(Boolean)
    augmentation_salaire_precedente: Mapped[float] = mapped_column(Double)
    nombre_participation_pee: Mapped[int] = mapped_column(SmallInteger)
    nb_formations_suivies: Mapped[int] = mapped_column(SmallInteger)
    distance_domicile_travail: Mapped[int] = mapped_column(SmallInteger)
    niveau_education: Mapped[int] = mapped_column(SmallInteger)
    domaine_etude: Mapped[v.DomaineEtude] = mapped_column(DOMAINE_ETUDE)
    frequence_deplacement: Mapped[v.FrequenceDeplacement] = mapped_column(FREQUENCE_DEPLACEMENT)
    annees_depuis_la_derniere_promotion: Mapped[int] = mapped_column(SmallInteger)
    annees_sous_responsable_actuel: Mapped[int] = mapped_column(SmallInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)

    prediction: Mapped[Prediction] = relationship(back_populates="input", primaryjoin=_JOIN)


class Prediction(Base):
    """What the model answered for one input (append-only, one per input)."""

    __tablename__ = "predictions"
    __table_args__ = (
        CheckConstraint("probability BETWEEN 0 AND 1", name="probability"),
        Index("ix_predictions_model_version_id", "model_version_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    input_id: Mapped[int] = mapped_column(BigInteger, unique=True, info={REFERENCES: _INPUTS})
    """The input it answered: checked once per statement, not a foreign key (0016)."""
    model_version_id: Mapped[int] = mapped_column(Integer, info={REFERENCES: "model_versions.id"})
    """The version that made it: checked once per statement, not a foreign key (0015)."""
    probability: Mapped[float] = mapped_column(Double)
    label: Mapped[PredictionLabel] = mapped_column(LABEL)
    threshold: Mapped[float] = mapped_column(Double)
    risk_level: Mapped[RiskLevel] = mapped_column(RISK)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    latency_ms: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    record_mac: Mapped[str | None] = mapped_column(String(64))
    """HMAC of the input and the output, computed by the service when it answered."""

    input: Mapped[PredictionInput] = relationship(primaryjoin=_JOIN, back_populates="prediction")


class RejectedRequest(Base):
    """A failed exchange (validation, authentication, server error), kept for the audit."""

    __tablename__ = "rejected_requests"
    __table_args__ = (Index("ix_rejected_requests_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    request_id: Mapped[str] = mapped_column(String(64))
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column(SmallInteger)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    payload_excerpt: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key``: the request it was first used with and the response.

    Written in the same transaction as the predictions it guards, so a retry either finds the
    committed response or nothing. Keys are scoped per API key and expire (IETF draft
    "The Idempotency-Key HTTP Header Field").
    """

    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ)


class PurgeLog(Base):
    """One retention purge of the audit trail, kept as its own record (GDPR retention).

    The purge removes a prefix of the hash chain; ``anchor_hash`` is the last removed link,
    from which ``attrition audit verify`` continues.
    """

    __tablename__ = "purge_log"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    executed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    executed_by: Mapped[str] = mapped_column(String(64), server_default=text("current_user"))
    cutoff: Mapped[datetime] = mapped_column(TZ)
    up_to_prediction_id: Mapped[int] = mapped_column(BigInteger)
    up_to_position: Mapped[int | None] = mapped_column(BigInteger)
    """Last chain position removed (purges since revision 0005); verification resumes after."""
    anchor_hash: Mapped[str] = mapped_column(String(64))
    predictions_deleted: Mapped[int] = mapped_column(Integer)
    inputs_deleted: Mapped[int] = mapped_column(Integer)
    rejected_deleted: Mapped[int] = mapped_column(Integer)


# The keyed audit chain's tables (revision 0005), kept in their own module for size.
from attrition.db.audit_models import AuditChain, AuditPending, ErasureLog  # noqa: E402, F401
from attrition.db.usage_models import UsageCounter  # noqa: E402, F401
