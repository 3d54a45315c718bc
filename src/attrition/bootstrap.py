"""The start-up sequence shared by ``make run``, ``attrition serve`` and the container.

Each step is idempotent and says what it does: resolve the database (embedded or
DATABASE_URL), migrate, grant the application role, load the dataset if the tables are empty,
train and activate a model if none is registered, and in dev create a first admin key.

Every check runs first as one plain psycopg query: on a database already prepared (the usual
restart) nothing else happens, and neither SQLAlchemy nor Alembic is imported — together they
took most of a second of each start of ``attrition serve``. The SQLAlchemy/Alembic code runs,
exactly as before, only when a check finds something to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Imported here rather than lazily by the first connection: `attrition serve` imports this
# module while the embedded PostgreSQL is still starting in the background.
import psycopg

from attrition.config import Settings
from attrition.data.extracts import missing_files, read_extracts, resolve_data_dir
from attrition.db import migrate
from attrition.db.engine import Database, resolve_database
from attrition.errors import ConfigurationError

DATASET_TABLES = ("employees", "performance_reviews", "survey_responses")
"""The tables ``load_extracts`` fills (a test keeps it equal to ``loading.TABLE_COLUMNS``)."""

Say = Callable[[str], None]


@dataclass(slots=True)
class BootReport:
    database: Database
    loaded: bool
    trained_version: str | None
    admin_key: str | None
    admin_password: str | None = None


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
        if not settings.allow_ephemeral_db:
            db.stop()
            raise ConfigurationError(
                "Base non persistante en production : montez un stockage persistant sur /data "
                "(ATTRITION_PGDATA), définissez DATABASE_URL, ou, pour une démonstration "
                "seulement, ATTRITION_ALLOW_EPHEMERAL_DB=1."
            )
        say(
            "ATTENTION : base NON persistante acceptée (ATTRITION_ALLOW_EPHEMERAL_DB) : "
            "données, modèle et piste d'audit seront perdus au prochain redémarrage."
        )
    if (
        settings.is_prod
        and db.embedded is None
        and not db.embedded_dir
        and settings.db.app_password is None
    ):
        db.stop()
        raise ConfigurationError(
            f"ATTRITION_DB__APP_PASSWORD requis avec DATABASE_URL en production : le rôle "
            f"applicatif « {settings.db.app_role} » s'y connecte par mot de passe."
        )
    # One connection as the role manager (the embedded superuser, else the owner): the revision
    # check in autocommit, so that no snapshot or lock is held while Alembic migrates.
    with db.connect(admin=True, autocommit=True) as conn:
        if migrate.schema_at_head(conn):
            say(f"Schéma à jour (révision {migrate.HEAD_REVISION}, aucune migration à appliquer).")
        else:
            migrate.upgrade(db.owner_engine())
            say("Schéma à jour (migrations Alembic appliquées).")
        migrate.ensure_app_role(
            conn, settings, db.database_name or settings.db.name, password=db.app_password
        )
    say(f"Rôle applicatif « {settings.db.app_role} » : droits minimaux accordés.")
    return db


def _dataset_counts(db: Database) -> dict[str, int]:
    """Rows in each dataset table, read over one psycopg connection."""
    counts: dict[str, int] = {}
    with db.connect() as conn:
        for table in DATASET_TABLES:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            counts[table] = int(row[0]) if row else 0
    return counts


def load_if_empty(db: Database, settings: Settings, say: Say, data_dir: Path | None = None) -> bool:
    counts = _dataset_counts(db)
    if all(counts.values()):
        say(f"Jeu de données déjà chargé ({counts['employees']} employés).")
        return False
    from attrition.db.loading import dataset_counts, load_extracts

    with db.owner_engine().begin() as conn:
        counts = dataset_counts(conn)  # again, under the loading transaction
        if all(counts.values()):
            say(f"Jeu de données déjà chargé ({counts['employees']} employés).")
            return False
        directory = ensure_data_dir(settings, data_dir, say)
        extracts = read_extracts(directory)
        report = load_extracts(conn, extracts)
    say(f"Jeu de données chargé depuis {directory} : {report.totals['employees']} employés.")
    return True


def train_if_none(db: Database, settings: Settings, say: Say) -> str | None:
    with db.connect() as conn:
        if conn.execute("SELECT 1 FROM model_versions LIMIT 1").fetchone() is not None:
            say("Un modèle est déjà enregistré.")
            return None
    from attrition.model.pipeline import RETAINED_RECIPE, train_and_register

    say(
        "Aucun modèle enregistré : entraînement de la recette retenue (quelques secondes ; "
        "« attrition train --compare » compare les candidats)…"
    )
    version = train_and_register(
        db, settings, activate=True, repeats=1, candidates=(RETAINED_RECIPE,), say=say
    )
    say(f"Modèle {version} entraîné, enregistré et activé.")
    return version


def ensure_admin_key(db: Database, settings: Settings, say: Say) -> str | None:
    """In dev (or with ATTRITION_ADMIN_KEY), make sure an admin key exists; print a new one once.

    The key store (SQLAlchemy) is reached only when a key has to be written.
    """
    given = settings.admin_key.get_secret_value() if settings.admin_key is not None else None
    known = None
    with db.connect() as conn:
        has_admin = conn.execute(
            "SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1"
        ).fetchone()
        if given is not None:
            from attrition.security.keys import parse_key

            known = conn.execute(
                "SELECT 1 FROM api_keys WHERE key_id = %s", (parse_key(given).key_id,)
            ).fetchone()
    if given is not None:
        if not known:
            from attrition.security.store import import_key

            import_key(db, settings, given, "admin-bootstrap", "admin")
        return None
    if has_admin and not settings.is_prod:
        say(
            "Clé admin déjà créée (affichée une seule fois, au premier démarrage). Pour en "
            "obtenir une nouvelle : .venv/bin/attrition keys create --name mon-nom --role admin"
        )
    if has_admin or settings.is_prod:
        return None
    from attrition.security.store import create_key

    created = create_key(db, settings, name="admin-dev", role="admin")
    say("Première clé admin créée (affichée une seule fois) :")
    say(f"    {created.key}")
    return created.key


FIRST_ADMIN = "admin"


def ensure_admin_user(db: Database, settings: Settings, say: Say) -> str | None:
    """Make sure a person can sign in to /app: in dev, a first admin account is created and its
    one-time password printed once; with ATTRITION_ADMIN_PASSWORD (e.g. a hosted deployment
    where no one runs the CLI) it gets that password; otherwise the command is printed.
    """
    with db.connect() as conn:
        admins = conn.execute(
            "SELECT login, must_change_password AND last_sign_in_at IS NULL FROM users "
            "WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id"
        ).fetchall()
        taken = conn.execute("SELECT 1 FROM users WHERE login = %s", (FIRST_ADMIN,)).fetchone()
    if admins:
        login, unused = admins[0]
        if unused and len(admins) == 1:
            say(
                f"Interface web : le compte « {login} » attend sa première connexion ; mot de "
                f"passe perdu ? attrition users reset {login}"
            )
        return None
    create = "attrition users create --login <identifiant> --role admin"
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    if taken or (settings.is_prod and given is None):
        say(
            "Aucun compte administrateur actif pour l'interface web : créez-en un avec "
            f"« {create} » (ou définissez ATTRITION_ADMIN_PASSWORD avant le démarrage)."
        )
        return None
    import asyncio

    from attrition.services.accounts import AccountService, connect_to

    service = AccountService(connect_to(db.owner_conninfo))
    issued = asyncio.run(service.create_user(FIRST_ADMIN, "admin", given))
    if given is not None:
        say(
            f"Premier compte de l'interface web créé : identifiant « {issued.login} », avec le "
            "mot de passe d'ATTRITION_ADMIN_PASSWORD (à changer à la première connexion)."
        )
        return None
    say(
        f"Premier compte de l'interface web créé : identifiant « {issued.login} », mot de passe "
        f"à usage unique (affiché une seule fois, à changer à la première connexion) : "
        f"{issued.password}"
    )
    return issued.password


#: Advisory lock (transaction level) held while a server prepares the database (:func:`boot`).
BOOT_LOCK_ID = 7_140_002


@contextlib.contextmanager
def boot_lock(db: Database, say: Say) -> Iterator[None]:
    """One replica at a time prepares a shared database (migrations, grants, data, model).

    Concurrent GRANTs on one object fail ("tuple concurrently updated") and two replicas
    starting on an empty database would both load the data and train: the second waits here,
    then finds everything done. A transaction lock, held by a transaction left open (no
    snapshot, no row locked) for the preparation: released at its end or when the connection
    drops, even behind PgBouncer in transaction mode (a session lock would stay with the
    pooled server connection).
    """
    with db.connect(admin=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (BOOT_LOCK_ID,)).fetchone()
        if not (row and row[0]):
            say("Une autre réplique prépare la base : attente de la fin de sa préparation…")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (BOOT_LOCK_ID,))
        try:
            yield
        finally:
            # The preparation may have stopped the server (a refused configuration): its
            # error, not this one, is what the caller must see.
            with contextlib.suppress(psycopg.Error):
                conn.rollback()


def boot(settings: Settings, say: Say, *, train: bool = True) -> BootReport:
    db = resolve_database(settings)
    with boot_lock(db, say):
        prepare_database(settings, say, db)
        loaded = load_if_empty(db, settings, say)
        version = train_if_none(db, settings, say) if train else None
        key = ensure_admin_key(db, settings, say)
        password = ensure_admin_user(db, settings, say)
    return BootReport(
        database=db, loaded=loaded, trained_version=version, admin_key=key, admin_password=password
    )
