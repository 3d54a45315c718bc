"""The scoring form: its sections and fields, and the posted strings turned into a request body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attrition.api.schemas import FeatureInfo, feature_catalogue
from attrition.data import vocabulary as voc

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
                value=form_value(values.get(name)),
                error=errors.get(name),
            )
            for name in names
            if name in catalogue
        ]
        if fields:
            out.append((title, fields))
    return out


def form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_number(raw: str, kind: str) -> Any:
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
            data[field.name] = parse_number(raw, field.kind)
        elif field.kind == "bool":
            data[field.name] = {"true": True, "false": False}.get(raw, raw)
        else:
            data[field.name] = raw
    ident = str(form.get("id_employee") or "").strip()
    if ident:
        data["id_employee"] = parse_number(ident, "int")
    return data
