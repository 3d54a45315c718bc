"""The model card page (metrics, figures, variables) and the input-drift page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from attrition import wording
from attrition.api.schemas import feature_catalogue
from attrition.api.web.rendering import CHECK_AUDIT, CHECK_READ, at_midnight, local_zone, render
from attrition.api.web.session import html_errors, session_client
from attrition.config import PROJECT_ROOT
from attrition.errors import FieldError, NotFoundError, ValidationError
from attrition.model.summary import F_BETA, FIGURE_FILES, summary_metrics
from attrition.monitoring.drift import ACTION, DEFAULT_WINDOW, WATCH, drift_report
from attrition.monitoring.performance import performance_report

router = APIRouter(prefix="/app", include_in_schema=False)

#: Figures of the model card (``attrition model report``), when the repository is at hand.
FIGURES_DIR = PROJECT_ROOT / "docs" / "img" / "modele"
MODEL_CARD = PROJECT_ROOT / "docs" / "modele.md"
METRIC_LABELS = (
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("f1", "F1"),
    ("recall", "Rappel"),
    ("precision", "Précision"),
    ("brier", "Score de Brier"),
    ("threshold", "Seuil (validation croisée)"),
)
FIGURE_TITLES = {
    "roc": "Courbe ROC : capacité à classer les partants avant ceux qui restent",
    "precision_recall": "Courbe précision-rappel : départs repérés contre fausses alertes",
    "calibration": "Calibration : probabilités annoncées contre départs observés",
    "confusion": "Au seuil d'alerte : départs repérés, manqués, et fausses alertes",
    "importance": "Les variables qui pèsent le plus dans le score",
    "fairness": "Taux de signalement par genre et par tranche d'âge",
}


def card_version(path: Path = MODEL_CARD) -> str | None:
    """The version the committed model card and its figures describe."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^- Version : \*\*([^*]+)\*\*", text, re.MULTILINE)
    return match.group(1) if match else None


@router.get("/modele", name="web_model")
@html_errors
async def model_card(request: Request) -> Response:
    """The active model: version, threshold, cross-validated metrics, figures, variables."""
    client = await CHECK_READ(await session_client(request))
    model = request.app.state.runtime.require()
    summary = summary_metrics(model.metrics)
    metrics = [
        (label, summary.get(f"{key}_mean"), summary.get(f"{key}_std"))
        for key, label in METRIC_LABELS
        if summary.get(f"{key}_mean") is not None
    ]
    oof = model.metrics.get("oof") or {}
    out_of_fold = [
        (label, oof[key])
        for key, label in METRIC_LABELS
        if isinstance(oof.get(key), int | float) and key != "threshold"
    ]
    confusion = oof.get("confusion")
    found = wording.detection(model.metrics)
    repetitions = summary.get("repetitions")
    figures = [
        (key, FIGURE_TITLES.get(key, key), name)
        for key, name in FIGURE_FILES.items()
        if (FIGURES_DIR / name).is_file()
    ]
    return await render(
        request,
        "modele.html",
        {
            "page": "modele",
            "model": model,
            "algorithm": wording.algorithm_label(model.algorithm),
            "threshold_meaning": wording.threshold_meaning(F_BETA),
            "detection": found.sentences() if found else None,
            "metrics": metrics,
            "repetitions": wording.count(repetitions, "répétition") if repetitions else None,
            "out_of_fold": out_of_fold,
            "confusion": confusion if isinstance(confusion, list) and len(confusion) == 2 else None,
            "figures": figures,
            "card_version": card_version() if figures else None,
            "catalogue": feature_catalogue(),
        },
        client=client,
    )


@router.get("/modele/figures/{name}", name="web_model_figure")
@html_errors
async def model_figure(request: Request, name: str) -> Response:
    """A figure of the model card (PNG), for signed-in users."""
    await CHECK_READ(await session_client(request))
    if name not in FIGURE_FILES.values() or not (FIGURES_DIR / name).is_file():
        raise NotFoundError(f"Figure « {name} » introuvable.")
    return FileResponse(FIGURES_DIR / name, media_type="image/png")


def drift_start(raw: str) -> datetime:
    """A day (from its midnight, Paris time) or an ISO date-time; 30 days ago by default."""
    if not raw:
        return datetime.now(UTC) - DEFAULT_WINDOW
    try:
        if "T" in raw:
            moment = datetime.fromisoformat(raw)
            return moment if moment.tzinfo else moment.replace(tzinfo=local_zone())
        return at_midnight(date.fromisoformat(raw))
    except ValueError:
        raise ValidationError(
            "Date de début invalide : format AAAA-MM-JJ attendu.",
            errors=[FieldError("depuis", "date attendue au format AAAA-MM-JJ")],
        ) from None


@router.get("/derive", name="web_drift")
@html_errors
async def drift(request: Request) -> Response:
    """Input drift against the training data, as a chart (auditeur, admin)."""
    client = await CHECK_AUDIT(await session_client(request))
    since = drift_start(request.query_params.get("depuis", "").strip())
    async with request.app.state.pool.connection() as conn:
        report = await drift_report(conn, since=since, model=request.app.state.runtime.current)
        performance = await performance_report(conn)
    request.app.state.metrics.observe_performance(performance)
    scale = max(0.5, max((f.psi for f in report.variables), default=0.0) * 1.1)
    return await render(
        request,
        "derive.html",
        {
            "page": "derive",
            "report": report,
            "performance": performance,
            "since_value": since.astimezone(local_zone()).date().isoformat(),
            "scale": scale,
            "watch": WATCH,
            "action": ACTION,
        },
        client=client,
    )
