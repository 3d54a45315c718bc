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
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Comparer tous les candidats (quelques minutes) au lieu de la recette retenue.",
        ),
    ] = False,
) -> None:
    """Entraîne depuis PostgreSQL (vue employee_features), évalue et enregistre une version."""
    from attrition.model.pipeline import RETAINED_RECIPE, train_and_register

    settings = load_settings()
    if seed is not None:
        settings = settings.model_copy(update={"seed": seed})
    with database(settings) as db, domain_errors():
        version = train_and_register(
            db,
            settings,
            activate=False,
            repeats=repeats,
            candidates=None if compare else (RETAINED_RECIPE,),
            say=say,
        )
        console.print(f"[green]Version {version} enregistrée.[/]")
        if activate:
            # Same acceptance rule as `attrition model activate`: a refusal leaves the new
            # version registered but inactive, with the reasons.
            _activate(db, version, force=False, reason=None)


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

    from attrition.model import acceptance, registry
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
            "recalibration": (row.metrics.get("calibration") or {}).get("method", "aucune"),
            "acceptation": acceptance.figures_of(row.metrics),
        }
    console.print_json(json.dumps(info, ensure_ascii=False))


@model_app.command("activate")
def model_activate(
    version: Annotated[str, typer.Argument(help="Version à activer (ex. v1).")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Activer malgré la règle d'acceptation (avec --raison)."),
    ] = False,
    raison: Annotated[
        str | None,
        typer.Option("--raison", help="Pourquoi passer outre la règle (enregistré)."),
    ] = None,
) -> None:
    """Active une version si la règle d'acceptation l'accepte ; prise en compte sans redémarrage.

    Règle : PR-AUC pas sous la borne basse de l'intervalle à 95 % de la version active, pente
    de calibration entre 0,80 et 1,25, écart de rappel entre groupes pas creusé de plus de
    10 points (docs/modele.md). --force --raison "…" passe outre ; c'est enregistré.
    """
    with database() as db, domain_errors():
        _activate(db, version, force=force, reason=raison)


def _activate(db: Any, version: str, *, force: bool, reason: str | None) -> None:
    from sqlalchemy.orm import Session

    from attrition.model import registry

    with Session(db.owner_engine()) as session, session.begin():
        done = registry.activate_checked(session, version, force=force, reason=reason)
    if done.already_active:
        console.print(f"[green]Version {version} déjà active.[/]")
    elif done.forced:
        console.print(
            f"[yellow]Version {version} active (activation forcée malgré : "
            f"{' ; '.join(done.refusals)}). Raison enregistrée.[/]"
        )
    elif done.rollback:
        console.print(f"[green]Version {version} active (retour à une version déjà servie).[/]")
    else:
        console.print(f"[green]Version {version} active (règle d'acceptation respectée).[/]")


@model_app.command("evaluate")
def model_evaluate(
    seed: Annotated[int, typer.Option(help="Graine de la validation croisée.")] = 7,
    repeats: Annotated[int, typer.Option(help="Répétitions (5 plis chacune).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON sur une ligne.")] = False,
    candidates: Annotated[
        list[str] | None,
        typer.Option("--candidat", help="Limiter à ce candidat (répétable) ; défaut : tous."),
    ] = None,
) -> None:
    """Évalue la recette complète en validation croisée imbriquée (sans rien enregistrer).

    Recalibration décidée dans les plis externes, seuil choisi dans les plis internes,
    intervalles à 95 % (bootstrap stratifié) des indicateurs et de chaque ligne d'équité.
    """
    from attrition.model.pipeline import read_training_frame
    from attrition.model.training import METRICS, evaluate, evaluation_summary

    quiet = (lambda _m: None) if as_json else say
    with database() as db, domain_errors():
        frame = read_training_frame(db)
        report = evaluate(
            frame, seed=seed, repeats=repeats, candidates=candidates or None, progress=quiet
        )
    result = evaluation_summary(report)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    table = Table("candidat", *METRICS)
    for cand, res in report.candidates.items():
        s = res.summary()
        table.add_row(cand, *[f"{s[m]['mean']:.3f} ± {s[m]['std']:.3f}" for m in METRICS])
    console.print(table)
    calibration, operating = result["calibration"], result["operating"]
    console.print(
        f"Retenu : [bold]{result['model']}[/] ; Brier {calibration['brier_raw']:.4f} sans "
        f"recalibration, {calibration['brier_calibrated']:.4f} avec "
        f"({'conservée' if calibration['kept'] else 'non conservée'})."
    )
    per_100 = operating["flagged_leavers_per_100"]
    console.print(
        f"Sur 100 employés signalés, {per_100['value']:.0f} partent "
        f"(IC 95 % : {per_100['low']:.0f} à {per_100['high']:.0f})."
    )


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
