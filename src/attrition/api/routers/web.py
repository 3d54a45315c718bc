"""The web interface for HR users, under /app: server-rendered pages in French.

It is a second door to the same rooms, not a second house: users sign in with their API
key, which is sealed in the session cookie and re-authenticated on every request by the
API's :class:`~attrition.security.clients.Authenticator` (revocation, expiry and rate limits
apply at once); roles are checked by the API's own dependencies (``deps.Predicteur``...);
forms are validated by the API's ``PredictionRequest`` and scored and recorded by
``PredictionService.predict`` with source ``web``; history is read with the API's audit
queries. Every POST form carries a per-session CSRF token. Errors become French pages
(same status and wording as the API's problem responses) and refused requests are recorded
like the API's.
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import psycopg
import pydantic
from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from psycopg_pool import PoolTimeout
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import FileResponse, RedirectResponse, Response

from attrition.api import deps, problems
from attrition.api.routers.predictions import recorded
from attrition.api.schemas import (
    EXAMPLE_EMPLOYEE,
    FeatureInfo,
    PredictionRequest,
    feature_catalogue,
)
from attrition.config import PROJECT_ROOT, Settings
from attrition.data import vocabulary as voc
from attrition.db import audit, idempotency
from attrition.errors import (
    AttritionError,
    AuthenticationError,
    DatabaseUnavailableError,
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from attrition.model import features as feat
from attrition.model.summary import FIGURE_FILES, summary_metrics
from attrition.monitoring.cli import DEFAULT_WINDOW
from attrition.monitoring.drift import ACTION, STATUS_LABELS, WATCH, drift_report
from attrition.security.clients import Client
from attrition.security.sessions import SESSION_MAX_AGE_S, KeySealer, session_signing_key
from attrition.services.predictions import Outcome, RequestContext, ScoreItem

router = APIRouter(prefix="/app", include_in_schema=False)

API_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = API_DIR / "templates"
STATIC_DIR = API_DIR / "static"
#: Figures of the model card (``attrition model report``), when the repository is at hand.
FIGURES_DIR = PROJECT_ROOT / "docs" / "img" / "modele"
MODEL_CARD = PROJECT_ROOT / "docs" / "modele.md"
SESSION_COOKIE = "attrition_session"
PAGE_SIZE = 50

ROLE_LABELS = {"admin": "administrateur", "predicteur": "prédicteur", "auditeur": "auditeur"}
RISK_LABELS = {"faible": "faible", "moyen": "moyen", "eleve": "élevé"}
DECISION_LABELS = {"depart": "départ probable", "reste": "maintien probable"}
SOURCE_LABELS = {
    "api": "API",
    "batch": "API (lot)",
    "employee": "API (dossier)",
    "web": "interface web",
}
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
    "roc": "Courbe ROC",
    "precision_recall": "Courbe précision-rappel",
    "calibration": "Courbe de calibration",
    "confusion": "Matrice de confusion au seuil",
    "importance": "Importance globale des variables",
    "fairness": "Taux par genre et par tranche d'âge",
}
#: Form sections; any vocabulary field not listed lands in the last one, so none is missed.
FORM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Profil",
        (
            "age",
            "genre",
            "statut_marital",
            "niveau_education",
            "domaine_etude",
            "distance_domicile_travail",
        ),
    ),
    (
        "Poste et rémunération",
        (
            "departement",
            "poste",
            "niveau_hierarchique_poste",
            "revenu_mensuel",
            "augmentation_salaire_precedente",
            "heures_supplementaires",
            "frequence_deplacement",
        ),
    ),
    (
        "Parcours",
        (
            "nombre_experiences_precedentes",
            "annees_experience_totale",
            "annees_dans_l_entreprise",
            "annees_dans_le_poste_actuel",
            "annees_depuis_la_derniere_promotion",
            "annees_sous_responsable_actuel",
        ),
    ),
    (
        "Évaluations et satisfaction",
        (
            "note_evaluation_precedente",
            "note_evaluation_actuelle",
            "satisfaction_employee_environnement",
            "satisfaction_employee_nature_travail",
            "satisfaction_employee_equipe",
            "satisfaction_employee_equilibre_pro_perso",
        ),
    ),
    ("Épargne salariale et formation", ("nombre_participation_pee", "nb_formations_suivies")),
)


def _role_check(alias: Any) -> Callable[[Client], Awaitable[Client]]:
    """The API's own role check behind ``deps.Predicteur`` and friends."""
    return get_args(alias)[1].dependency


CHECK_SCORE = _role_check(deps.Predicteur)
CHECK_READ = _role_check(deps.Lecteur)
CHECK_AUDIT = _role_check(deps.Auditeur)


class SignInRequired(Exception):
    """No valid session: back to the sign-in page, with an optional French notice."""

    def __init__(self, notice: str | None = None) -> None:
        super().__init__(notice)
        self.notice = notice


# ---- formatting (Jinja filters) ------------------------------------------------------------------


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """Paris time for HR users; UTC where the time zone database is missing."""
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:  # pragma: no cover - slim images without tzdata
        return UTC


def fr_number(value: Any, digits: int = 2) -> str:
    """A number the French way (decimal comma); an em dash when missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return str(value)


def fr_percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{fr_number(100 * value, digits)}\u00a0%"


def fr_signed(value: float) -> str:
    return ("+" if value > 0 else "−" if value < 0 else "") + fr_number(abs(value), 2)


def fr_datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(local_zone()).strftime("%d/%m/%Y %H:%M")


def fr_value(value: Any) -> str:
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float) and value.is_integer():
        return fr_number(int(value))
    return fr_number(value)


def _path_for(request: Request) -> dict[str, Any]:
    def path_for(name: str, /, **params: Any) -> str:
        return str(request.app.url_path_for(name, **params))

    return {"path_for": path_for}


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The Jinja2 environment (autoescaped), built on first use."""
    engine = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_path_for])
    engine.env.filters.update(
        number=fr_number,
        percent=fr_percent,
        signed=fr_signed,
        when=fr_datetime,
        value=fr_value,
    )
    engine.env.globals.update(
        ROLE_LABELS=ROLE_LABELS,
        RISK_LABELS=RISK_LABELS,
        DECISION_LABELS=DECISION_LABELS,
        SOURCE_LABELS=SOURCE_LABELS,
        STATUS_LABELS=STATUS_LABELS,
    )
    return engine


# ---- session, authentication, CSRF ---------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (403 otherwise)."""
    form = await request.form()
    sent, expected = form.get("csrf"), request.session.get("csrf")
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise PermissionDeniedError(
            "Jeton de sécurité du formulaire absent ou expiré : rechargez la page, puis "
            "recommencez."
        )
    return form


async def authenticate(request: Request, raw: str) -> Client:
    """The API's authenticator, as ``deps.current_client`` calls it."""
    ip = request.client.host if request.client else "inconnue"
    try:
        client: Client = await request.app.state.authenticator.authenticate(raw, ip)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailableError(
            "La base de données est indisponible : authentification impossible."
        ) from exc
    request.state.client = client
    return client


async def session_client(request: Request) -> Client:
    """The signed-in user, re-authenticated with the key sealed in the session."""
    sealed = request.session.get("cle")
    if not isinstance(sealed, str):
        raise SignInRequired()
    key = request.app.state.key_sealer.open(sealed)
    if key is None:
        request.session.clear()
        raise SignInRequired("Votre session a expiré : reconnectez-vous.")
    try:
        return await authenticate(request, key)
    except AuthenticationError as exc:
        request.session.clear()
        await problems.record_rejection(
            request, 401, [{"champ": "session", "message": exc.message}]
        )
        raise SignInRequired(f"{exc.message} Reconnectez-vous avec une clé valide.") from None


async def allowed(check: Callable[[Client], Awaitable[Client]], client: Client) -> bool:
    try:
        await check(client)
    except PermissionDeniedError:
        return False
    return True


async def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    client: Client | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render a page with what every page needs (user, menu, CSRF token, notice)."""
    base = {
        "client": client,
        "csrf": csrf_token(request),
        "can_score": client is not None and await allowed(CHECK_SCORE, client),
        "can_audit": client is not None and await allowed(CHECK_AUDIT, client),
        "notice": request.session.pop("notice", None),
        "ephemeral_db": getattr(request.app.state, "database", None) is not None
        and not request.app.state.database.persistent,
    }
    return templates().TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status, headers=headers
    )


async def error_page(request: Request, exc: AttritionError) -> Response:
    """The French page of a domain error, with the API's status and title."""
    status, title = next(
        (v for k, v in problems.STATUS.items() if isinstance(exc, k)), (500, "Erreur interne")
    )
    items = [e.as_dict() for e in exc.errors]
    if status in (401, 403, 422, 429) or status >= 500:
        await problems.record_rejection(
            request, status, items or [{"champ": "-", "message": exc.message}]
        )
    headers = {}
    if status in (429, 503):
        headers["Retry-After"] = str(getattr(exc, "retry_after", 5))
    client = getattr(request.state, "client", None)
    return await render(
        request,
        "erreur.html",
        {"title": title, "message": exc.message, "errors": items, "status": status},
        client=client,
        status=status,
        headers=headers,
    )


def html_errors(
    endpoint: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Turn domain errors into French pages and a missing session into the sign-in page."""

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        try:
            return await endpoint(*args, **kwargs)
        except SignInRequired as exc:
            if exc.notice:
                request.session["notice"] = exc.notice
            return RedirectResponse(request.app.url_path_for("web_sign_in_form"), 303)
        except AttritionError as exc:
            return await error_page(request, exc)
        except (psycopg.OperationalError, PoolTimeout):
            return await error_page(
                request,
                DatabaseUnavailableError(
                    "La base de données est indisponible ou trop lente : réessayez dans "
                    "quelques secondes."
                ),
            )

    return wrapper


def redirect(request: Request, name: str, **params: Any) -> RedirectResponse:
    return RedirectResponse(request.app.url_path_for(name, **params), status_code=303)


# ---- sign in, sign out ---------------------------------------------------------------------------


@router.get("", name="web_home")
@html_errors
async def home(request: Request) -> Response:
    """Start page: scoring for those who may score, history for the others."""
    if not isinstance(request.session.get("cle"), str):
        return redirect(request, "web_sign_in_form")
    client = await session_client(request)
    return redirect(
        request, "web_score_form" if await allowed(CHECK_SCORE, client) else "web_history"
    )


@router.get("/connexion", name="web_sign_in_form")
@html_errors
async def sign_in_form(request: Request) -> Response:
    """The sign-in page."""
    return await render(request, "connexion.html")


@router.post("/connexion", name="web_sign_in")
@html_errors
async def sign_in(request: Request) -> Response:
    """Check the key with the API's authenticator, then open a session holding it sealed."""
    form = await checked_form(request)
    raw = str(form.get("cle") or "").strip()
    try:
        client = await authenticate(request, raw)
    except AuthenticationError as exc:
        message = exc.message if raw else "Saisissez votre clé API."
        await problems.record_rejection(request, 401, [{"champ": "cle", "message": message}])
        return await render(request, "connexion.html", {"error": message}, status=401)
    # A new session (and CSRF token) at sign-in: nothing from before survives (fixation).
    request.session.clear()
    request.session.update(
        cle=request.app.state.key_sealer.seal(raw),
        csrf=secrets.token_urlsafe(32),
    )
    return redirect(
        request, "web_score_form" if await allowed(CHECK_SCORE, client) else "web_history"
    )


@router.post("/deconnexion", name="web_sign_out")
@html_errors
async def sign_out(request: Request) -> Response:
    """Forget the session (the key stays valid for the API: revoke it there if needed)."""
    await checked_form(request)
    request.session.clear()
    request.session["notice"] = "Vous êtes déconnecté(e)."
    return redirect(request, "web_sign_in_form")


# ---- scoring -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of the scoring form, from the API's feature catalogue."""

    info: FeatureInfo
    kind: str  # "int", "float", "bool" or "category"
    value: str
    error: str | None


def form_sections(
    values: Mapping[str, Any], errors: Mapping[str, str]
) -> list[tuple[str, list[FormField]]]:
    """The form's fields grouped in sections, with their current values and errors."""
    catalogue = {info.nom: info for info in feature_catalogue()}
    placed = {name for _, names in FORM_GROUPS for name in names}
    groups = [*FORM_GROUPS, ("Autres", tuple(n for n in catalogue if n not in placed))]
    out = []
    for title, names in groups:
        fields = [
            FormField(
                info=catalogue[name],
                kind=voc.FEATURES_BY_NAME[name].kind,
                value=_form_value(values.get(name)),
                error=errors.get(name),
            )
            for name in names
            if name in catalogue
        ]
        if fields:
            out.append((title, fields))
    return out


def _form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(raw: str, kind: str) -> Any:
    """The typed number, or the raw text for the schema to refuse in French."""
    text = raw.replace(",", ".").replace("\u202f", "").replace(" ", "")
    try:
        return int(text) if kind == "int" and re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        return raw


def request_data(form: Mapping[str, Any]) -> dict[str, Any]:
    """Form strings -> the JSON-like body ``PredictionRequest`` validates (empty = missing)."""
    data: dict[str, Any] = {}
    for field in voc.FEATURES:
        raw = str(form.get(field.name) or "").strip()
        if not raw:
            continue
        if field.kind in ("int", "float"):
            data[field.name] = _number(raw, field.kind)
        elif field.kind == "bool":
            data[field.name] = {"true": True, "false": False}.get(raw, raw)
        else:
            data[field.name] = raw
    ident = str(form.get("id_employee") or "").strip()
    if ident:
        data["id_employee"] = _number(ident, "int")
    return data


FORM_TOKEN = re.compile(r"[0-9a-f]{32}")


def _context(
    request: Request, client: Client, form: Mapping[str, Any], payload: dict[str, Any]
) -> RequestContext:
    """The request context; with the form's one-time token, an idempotent one.

    The key joins the token and the digest of what is scored: the same form sent twice gets
    the first prediction back, while a form changed and sent again (browser back, then edit)
    is a new prediction, not a refusal.
    """
    token = str(form.get("jeton") or "")
    if not FORM_TOKEN.fullmatch(token):
        return RequestContext(
            request_id=request.state.request_id, api_key_id=client.id, source="web"
        )
    digest = idempotency.request_hash(request.url.path, orjson.dumps(payload))
    return RequestContext(
        request_id=request.state.request_id,
        api_key_id=client.id,
        source="web",
        idempotency_key=f"web:{token}:{digest[:16]}",
        request_hash=digest,
    )


def _prediction_id(outcomes: list[Outcome]) -> dict[str, Any]:
    return {"prediction_id": outcomes[0].prediction_id}


async def _score_and_show(
    request: Request, client: Client, form: Mapping[str, Any], item: ScoreItem
) -> Response:
    """Score and record ``item`` (once per form token), then show the recorded prediction."""
    ctx = _context(request, client, form, item.payload)
    result = await request.app.state.service.predict([item], ctx, render=_prediction_id)
    assert result.body is not None
    return redirect(request, "web_read_prediction", prediction_id=result.body["prediction_id"])


async def score_page(
    request: Request,
    client: Client,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    summary: list[dict[str, Any]] | None = None,
    employee_error: str | None = None,
    employee_value: str = "",
    status: int = 200,
) -> Response:
    values = values or {}
    return await render(
        request,
        "prediction.html",
        {
            "page": "prediction",
            "sections": form_sections(values, errors or {}),
            "id_employee": _form_value(values.get("id_employee")),
            "summary": summary or [],
            "employee_error": employee_error,
            "employee_value": employee_value,
            # One per rendering of the forms: a second submission of the same form (double
            # click, reload of the POST) replays the first prediction instead of adding one.
            "form_token": secrets.token_hex(16),
        },
        client=client,
        status=status,
    )


@router.get("/prediction", name="web_score_form")
@html_errors
async def score_form(request: Request) -> Response:
    """The scoring page: a stored employee by id, or the full form (optionally pre-filled)."""
    client = await CHECK_SCORE(await session_client(request))
    values: dict[str, Any] = {}
    dossier = request.query_params.get("dossier", "").strip()
    if request.query_params.get("exemple"):
        values = dict(EXAMPLE_EMPLOYEE)
    elif dossier:
        ident = _number(dossier, "int")
        if not isinstance(ident, int) or ident < 1:
            return await score_page(
                request,
                client,
                employee_error="Identifiant invalide : un nombre entier positif est attendu.",
                employee_value=dossier,
                status=422,
            )
        try:
            features = await request.app.state.service.employee_features(ident)
        except NotFoundError as exc:
            return await score_page(
                request, client, employee_error=exc.message, employee_value=dossier, status=404
            )
        values = {**features, "id_employee": ident}
    return await score_page(request, client, values=values)


@router.post("/prediction/employe", name="web_score_employee")
@html_errors
async def score_employee(request: Request) -> Response:
    """Score a stored employee (the API's stored-employee path, recorded with source web)."""
    client = await CHECK_SCORE(await session_client(request))
    form = await checked_form(request)
    raw = str(form.get("id_employee") or "").strip()
    ident = _number(raw, "int")
    if not isinstance(ident, int) or not 1 <= ident <= 2_147_483_647:
        message = "Identifiant invalide : un nombre entier positif est attendu."
        await problems.record_rejection(
            request, 422, [{"champ": "id_employee", "message": message}], raw
        )
        return await score_page(
            request, client, employee_error=message, employee_value=raw, status=422
        )
    service = request.app.state.service
    try:
        features = await service.employee_features(ident)
    except NotFoundError as exc:
        return await score_page(
            request, client, employee_error=exc.message, employee_value=raw, status=404
        )
    # The view already gives JSON-ready values (the raise as double precision).
    payload = {"id_employee": ident, **features}
    return await _score_and_show(request, client, form, ScoreItem(features, ident, payload))


@router.post("/prediction", name="web_score")
@html_errors
async def score(request: Request) -> Response:
    """Validate the form with the API's schema, then score and record it (source web)."""
    client = await CHECK_SCORE(await session_client(request))
    form = await checked_form(request)
    data = request_data(form)
    try:
        body = PredictionRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        items = problems.translate([dict(e) for e in exc.errors()])
        await problems.record_rejection(request, 422, items, data)
        errors: dict[str, str] = {}
        for item in items:
            errors.setdefault(item["champ"], item["message"])
        return await score_page(
            request, client, values=data, errors=errors, summary=_labelled(items), status=422
        )
    payload = body.model_dump(mode="json", exclude_none=True)
    try:
        return await _score_and_show(
            request, client, form, ScoreItem(body.features(), body.id_employee, payload)
        )
    except NotFoundError as exc:
        items = [{"champ": "id_employee", "message": exc.message}]
        return await score_page(
            request,
            client,
            values=data,
            errors={"id_employee": exc.message},
            summary=_labelled(items),
            status=404,
        )


def _labelled(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = {f.name: f.label for f in voc.FEATURES}
    labels["id_employee"] = "Identifiant de l'employé"
    return [{**item, "libelle": labels.get(item["champ"], item["champ"])} for item in items]


# ---- reading -------------------------------------------------------------------------------------


@router.get("/predictions/{prediction_id}", name="web_read_prediction")
@html_errors
async def read_prediction(request: Request, prediction_id: int) -> Response:
    """One recorded prediction: probability, decision, risk, threshold and its factors."""
    client = await CHECK_READ(await session_client(request))
    owner = client.id if client.role == "predicteur" else None
    async with request.app.state.pool.connection() as conn:
        row = await audit.get_prediction(conn, prediction_id, owner=owner)
    if row is None:
        raise NotFoundError(f"Prédiction {prediction_id} introuvable.")
    prediction = recorded(row)
    return await render(
        request,
        "resultat.html",
        {
            "page": "historique",
            "p": prediction,
            "factors": factor_bars(prediction["explication"], prediction["entree"]),
            "inputs": [(f.label, prediction["entree"].get(f.name)) for f in voc.FEATURES],
        },
        client=client,
    )


def factor_bars(
    explanation: Mapping[str, Any], inputs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Factors sorted by contribution, with a bar width relative to the largest one.

    The value shown is the factor's own: the input for a raw field or a log-scaled one, the
    engineered value (a share, a mean, a count) for a derived feature, whose recorded
    ``valeur`` is only the raw field it derives from.
    """
    factors = list(explanation.get("facteurs_hausse", [])) + list(
        explanation.get("facteurs_baisse", [])
    )
    factors.sort(key=lambda f: f["contribution"], reverse=True)
    largest = max((abs(f["contribution"]) for f in factors), default=0.0) or 1.0
    derived = _engineered(inputs) if inputs else {}
    out = []
    for factor in factors:
        value = factor.get("valeur")
        name = factor.get("variable", "")
        if name in derived and name not in voc.FEATURES_BY_NAME and not name.startswith("log_"):
            value = derived[name]
        width = round(100 * abs(factor["contribution"]) / largest, 1)
        out.append({**factor, "valeur": value, "width": width})
    return out


def _engineered(inputs: Mapping[str, Any]) -> dict[str, Any]:
    try:
        columns = feat.engineer(feat.columns_from_records([inputs]))
    except AttritionError:
        return {}
    values: dict[str, Any] = {
        name: column[0].item() for name, column in columns.items() if hasattr(column[0], "item")
    }
    values["sans_participation_pee"] = bool(values.get("sans_participation_pee"))
    return values


def _parse_date(raw: str, name: str, errors: list[FieldError]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(FieldError(name, "date attendue au format AAAA-MM-JJ"))
        return None


def _at_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=local_zone())


def history_filter(
    params: Mapping[str, str], client: Client
) -> tuple[audit.PredictionFilter, int | None, dict[str, str], list[FieldError]]:
    """The API's prediction filter from the page's query string (French errors)."""
    errors: list[FieldError] = []
    values = {
        k: params.get(k, "").strip()
        for k in ("id_employee", "depuis", "jusqu_a", "prediction", "model_version", "curseur")
    }
    ident = None
    if values["id_employee"]:
        parsed = _number(values["id_employee"], "int")
        if isinstance(parsed, int) and 1 <= parsed <= 2_147_483_647:
            ident = parsed
        else:
            errors.append(FieldError("id_employee", "nombre entier positif attendu"))
    since = _parse_date(values["depuis"], "depuis", errors)
    until = _parse_date(values["jusqu_a"], "jusqu_a", errors)
    label = values["prediction"] or None
    if label not in (None, "depart", "reste"):
        errors.append(
            FieldError("prediction", "valeur non autorisée ; valeurs possibles : depart, reste")
        )
        label = None
    version = values["model_version"][:32] or None
    after = None
    if values["curseur"]:
        try:
            after = audit.decode_cursor(values["curseur"])
        except (ValueError, KeyError, TypeError):
            errors.append(FieldError("curseur", "curseur invalide ou altéré"))
    flt = audit.PredictionFilter(
        owner=client.id if client.role == "predicteur" else None,
        id_employee=ident,
        since=_at_midnight(since) if since else None,
        until=_at_midnight(until + timedelta(days=1)) if until else None,
        model_version=version,
        label=label,
    )
    return flt, after, values, errors


@router.get("/historique", name="web_history")
@html_errors
async def history(request: Request) -> Response:
    """Recorded predictions, newest first, with the API's filters (a predicteur sees his own)."""
    client = await CHECK_READ(await session_client(request))
    flt, after, values, errors = history_filter(request.query_params, client)
    if errors:
        await problems.record_rejection(request, 422, [e.as_dict() for e in errors])
        return await render(
            request,
            "historique.html",
            {
                "page": "historique",
                "values": values,
                "errors": {e.field: e.message for e in errors},
                "rows": [],
                "next_query": None,
            },
            client=client,
            status=422,
        )
    async with request.app.state.pool.connection() as conn:
        rows = await audit.list_predictions(conn, flt, after=after, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_query = None
    if more:
        query = {k: v for k, v in values.items() if v and k != "curseur"}
        query["curseur"] = audit.encode_cursor(rows[-1]["prediction_id"])
        next_query = query
    return await render(
        request,
        "historique.html",
        {
            "page": "historique",
            "values": values,
            "errors": {},
            "rows": [recorded(r) for r in rows],
            "next_query": next_query,
            "first_page": after is None,
        },
        client=client,
    )


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
            "metrics": metrics,
            "repetitions": summary.get("repetitions"),
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
        return _at_midnight(date.fromisoformat(raw))
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
    scale = max(0.5, max((f.psi for f in report.variables), default=0.0) * 1.1)
    return await render(
        request,
        "derive.html",
        {
            "page": "derive",
            "report": report,
            "since_value": since.astimezone(local_zone()).date().isoformat(),
            "scale": scale,
            "watch": WATCH,
            "action": ACTION,
        },
        client=client,
    )


# ---- wiring --------------------------------------------------------------------------------------


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static files and the session middleware to ``app``."""
    secret = settings.secret_key.get_secret_value()
    app.state.key_sealer = KeySealer(secret, max_age_s=SESSION_MAX_AGE_S)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_signing_key(secret),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        path="/app",
        # Framed by another site (the page of a Hugging Face Space), a strict cookie would
        # never be sent: then SameSite=None, Secure, and partitioned per top-level site
        # (CHIPS). The CSRF token of every form still guards the POSTs.
        same_site="none" if settings.api.frame_ancestors else "strict",
        https_only=settings.is_prod or bool(settings.api.frame_ancestors),
        partitioned=bool(settings.api.frame_ancestors),
    )
