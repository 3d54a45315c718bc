"""``attrition train`` and ``attrition model``: list, show, activate, evaluate, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from attrition.cli.common import console, database, domain_errors, load_settings, say

model_app = typer.Typer(
    help="Registre des modèles : lister, activer, évaluer.", no_args_is_help=True
)


def train_command(
    activate: Annotated[
        bool, typer.Option("--activate", help="Activer la nouvelle version.")
    ] = False,
    repeats: Annotated[int, typer.Option(help="Répétitions de la validation croisée.")] = 5,
    seed: Annotated[int | None, typer.Option(help="Graine (défaut : ATTRITION_SEED ou 7).")] = None,
) -> None:
    """Entraîne depuis PostgreSQL (vue employee_features), évalue et enregistre une version."""
    from attrition.model.pipeline import train_and_register

    settings = load_settings()
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
    from attrition.model.card import render_model_card
    from attrition.model.pipeline import rebuild_for_report
    from attrition.model.report import render_report

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
