"""The start-up sequence shared by ``make run``, ``attrition serve`` and the container.

Each step is idempotent and says what it does: resolve the database (embedded or
DATABASE_URL), migrate, grant the application role, load the dataset if the tables are empty,
train and activate a model if none is registered, and in dev create a first admin key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text

from attrition.config import Settings
from attrition.data.extracts import missing_files, read_extracts, resolve_data_dir
from attrition.db import migrate
from attrition.db.engine import Database, resolve_database
from attrition.db.loading import dataset_counts, load_extracts
from attrition.errors import ConfigurationError, DataFileError

Say = Callable[[str], None]


@dataclass(slots=True)
class BootReport:
    database: Database
    loaded: bool
    trained_version: str | None
    admin_key: str | None


def ensure_data_dir(settings: Settings, explicit: Path | None, say: Say) -> Path:
    """The folder holding the extracts; fetch them from the public copies when absent."""
    data_dir = resolve_data_dir(explicit, settings.data_dir, settings.resolved_data_dir)
    if missing_files(data_dir):
        from attrition.data.fetch import fetch_extracts

        say(f"Extraits absents de {data_dir} : téléchargement des copies publiques…")
        fetch_extracts(data_dir, progress=say)
    return data_dir


def prepare_database(settings: Settings, say: Say, db: Database | None = None) -> Database:
    db = db or resolve_database(settings)
    persistence = "persistante" if db.persistent else "NON persistante"
    say(f"Base de données : {db.description} — {persistence}")
    if settings.is_prod and not db.persistent:
        db.stop()
        raise ConfigurationError(
            "Base non persistante en production : montez un stockage persistant sur /data "
            "(ATTRITION_PGDATA) ou définissez DATABASE_URL."
        )
    engine = db.owner_engine()
    migrate.upgrade(engine)
    say("Schéma à jour (migrations Alembic appliquées).")
    migrate.ensure_app_role(db.admin_engine(), settings, db.owner_url.database or settings.db.name)
    say(f"Rôle applicatif « {settings.db.app_role} » : droits minimaux accordés.")
    return db


def load_if_empty(db: Database, settings: Settings, say: Say, data_dir: Path | None = None) -> bool:
    with db.owner_engine().begin() as conn:
        counts = dataset_counts(conn)
        if all(counts.values()):
            say(f"Jeu de données déjà chargé ({counts['employees']} employés).")
            return False
        directory = ensure_data_dir(settings, data_dir, say)
        extracts = read_extracts(directory)
        report = load_extracts(conn, extracts)
    say(f"Jeu de données chargé depuis {directory} : {report.totals['employees']} employés.")
    return True


def train_if_none(db: Database, settings: Settings, say: Say) -> str | None:
    from attrition.db.models import ModelVersion

    with db.owner_engine().connect() as conn:
        if conn.scalar(select(ModelVersion.id).limit(1)) is not None:
            say("Un modèle est déjà enregistré.")
            return None
    from attrition.model.pipeline import train_and_register

    say("Aucun modèle enregistré : entraînement du modèle (validation croisée)…")
    version = train_and_register(db, settings, activate=True, repeats=1, say=say)
    say(f"Modèle {version} entraîné, enregistré et activé.")
    return version


def ensure_admin_key(db: Database, settings: Settings, say: Say) -> str | None:
    """In dev (or with ATTRITION_ADMIN_KEY), make sure an admin key exists; print a new one once."""
    from attrition.security.store import create_key, import_key

    with db.owner_engine().begin() as conn:
        has_admin = conn.scalar(
            text("SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1")
        )
    if settings.admin_key is not None:
        import_key(db, settings, settings.admin_key.get_secret_value(), "admin-bootstrap", "admin")
        return None
    if has_admin or settings.is_prod:
        return None
    created = create_key(db, settings, name="admin-dev", role="admin")
    say("Première clé admin créée (affichée une seule fois) :")
    say(f"    {created.key}")
    return created.key


def boot(settings: Settings, say: Say, *, train: bool = True) -> BootReport:
    try:
        db = prepare_database(settings, say)
        loaded = load_if_empty(db, settings, say)
    except DataFileError:
        raise
    version = train_if_none(db, settings, say) if train else None
    key = ensure_admin_key(db, settings, say)
    return BootReport(database=db, loaded=loaded, trained_version=version, admin_key=key)
