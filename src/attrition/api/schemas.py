"""Request and response schemas (Pydantic v2), built from the dataset vocabulary.

The employee input model is generated from :data:`attrition.data.vocabulary.FEATURES`, so its
fields, types, ranges, categories and help texts are the ones the database and the model use:
there is no second list to keep in sync. Numbers are strict (no ``"34"``, no ``true``) but an
integral float such as ``3087.0`` is an integer, as JSON Schema says it is.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from attrition.data import vocabulary as v
from attrition.data.extracts import coherence_errors


def _strict_int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "doit être un nombre entier")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise PydanticCustomError("int_type", "doit être un nombre entier")
        return int(value)
    return value


#: An optional strict integer: ``"34"`` and ``true`` are refused here too (the schema says so).
OptionalStrictInt = Annotated[
    int | None, BeforeValidator(lambda value: None if value is None else _strict_int(value))
]

# RFC 3339 date and time; the offset may be left out (the API then reads the time as UTC).
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _iso_datetime(value: Any) -> Any:
    # Without this, Pydantic reads "0.5" or "1700000000" as a Unix timestamp: the documented
    # format is an ISO 8601 date and time, and nothing else is accepted.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise PydanticCustomError(
            "datetime_parsing", "doit être une date et heure ISO 8601 (ex. 2026-01-31T00:00:00Z)"
        )
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    # Same reason as above: 0 or "1700000000" must not become a date.
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("date_parsing", "doit être une date AAAA-MM-JJ")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]

_ENUMS: dict[str, type[StrEnum]] = {
    "genre": v.Genre,
    "statut_marital": v.StatutMarital,
    "departement": v.Departement,
    "poste": v.Poste,
    "domaine_etude": v.DomaineEtude,
    "frequence_deplacement": v.FrequenceDeplacement,
}

#: A real employee of the dataset (id 1), used as the documented example.
EXAMPLE_EMPLOYEE: dict[str, Any] = {
    "age": 41,
    "genre": "F",
    "revenu_mensuel": 5993,
    "statut_marital": "Célibataire",
    "departement": "Commercial",
    "poste": "Cadre Commercial",
    "nombre_experiences_precedentes": 8,
    "annees_experience_totale": 8,
    "annees_dans_l_entreprise": 6,
    "annees_dans_le_poste_actuel": 4,
    "satisfaction_employee_environnement": 2,
    "note_evaluation_precedente": 3,
    "niveau_hierarchique_poste": 2,
    "satisfaction_employee_nature_travail": 4,
    "satisfaction_employee_equipe": 1,
    "satisfaction_employee_equilibre_pro_perso": 1,
    "note_evaluation_actuelle": 3,
    "heures_supplementaires": True,
    "augmentation_salaire_precedente": 11.0,
    "nombre_participation_pee": 0,
    "nb_formations_suivies": 0,
    "distance_domicile_travail": 1,
    "niveau_education": 2,
    "domaine_etude": "Infra & Cloud",
    "frequence_deplacement": "Occasionnel",
    "annees_depuis_la_derniere_promotion": 0,
    "annees_sous_responsable_actuel": 5,
}


def _field_definition(f: v.Field) -> tuple[Any, Any]:
    description = " ".join(filter(None, (f"{f.label}.", v.help_text(f))))
    default: Any = ... if f.required else None
    if f.kind == "category":
        annotation: Any = _ENUMS[f.name]
        constraints: dict[str, Any] = {}
    elif f.kind == "bool":
        annotation, constraints = _NATIVE_BOOL, {}
    elif f.kind == "int":
        annotation, constraints = _NATIVE_INT, {"ge": f.low, "le": f.high}
    else:
        annotation = _NATIVE_FLOAT
        constraints = {"ge": f.low, "le": f.high, "allow_inf_nan": False}
    if not f.required:
        annotation = annotation | None
    return annotation, Field(default, description=description, **constraints)


# The employee's fields are validated by pydantic-core alone (strict types: no "34", no
# true for a number), with no Python call per field: a batch of 1,000 has 27,000 of them.
# What strict types refuse and the API accepts, an integral float for an integer (3087.0,
# JSON Schema's integer) and an int for a float, is converted once per row, before
# (:meth:`_EmployeeBase._numbers`). The errors keep their types (int_type, float_type,
# bool_type, finite_number), hence their French messages (api/translations.py).
_NATIVE_INT = Annotated[int, Strict()]
_NATIVE_FLOAT = Annotated[float, Strict()]
_NATIVE_BOOL = Annotated[bool, Strict()]
_INT_FIELDS = tuple(f.name for f in v.FEATURES if f.kind == "int")
_FLOAT_FIELDS = tuple(f.name for f in v.FEATURES if f.kind == "float")
_INTS_ONLY = frozenset({int, type(None)})
_FLOATS_ONLY = frozenset({float, type(None)})


def _as_int(value: Any) -> Any:
    # What _strict_int accepts and a strict int does not: an integral, finite float.
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _as_float(value: Any) -> Any:
    # A finite int or float subclass becomes a plain float; the rest is refused by the field.
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return value


class _EmployeeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ints = set(map(type, map(data.get, _INT_FIELDS)))
        floats = set(map(type, map(data.get, _FLOAT_FIELDS)))
        if ints <= _INTS_ONLY and floats <= _FLOATS_ONLY:
            return data  # the usual row: nothing to convert
        return {
            k: _as_int(x) if k in _INT_FIELDS else _as_float(x) if k in _FLOAT_FIELDS else x
            for k, x in data.items()
        }

    @model_validator(mode="after")
    def _coherent(self) -> _EmployeeBase:
        problems = coherence_errors(self.__dict__)
        if problems:
            field, reason = problems[0]
            raise PydanticCustomError("coherence", "{raison}", {"champ": field, "raison": reason})
        return self


EmployeeFeatures: type[_EmployeeBase] = create_model(  # type: ignore[call-overload]
    "EmployeeFeatures",
    __base__=_EmployeeBase,
    __doc__="Les caractéristiques d'un employé, telles que le modèle les attend.",
    **{f.name: _field_definition(f) for f in v.FEATURES},
)
EmployeeFeatures.model_config["json_schema_extra"] = {"examples": [EXAMPLE_EMPLOYEE]}
EmployeeFeatures.model_rebuild(force=True)


_MODEL_INPUTS = frozenset(v.MODEL_INPUTS)


class PredictionRequest(EmployeeFeatures):
    """Une demande de prédiction : les caractéristiques d'un employé, son identifiant éventuel."""

    model_config = ConfigDict(
        extra="forbid",
        use_enum_values=True,
        json_schema_extra={"examples": [{**EXAMPLE_EMPLOYEE, "id_employee": 1}]},
    )

    id_employee: OptionalStrictInt = Field(
        default=None,
        ge=1,
        le=2_147_483_647,
        description="Identifiant d'un employé enregistré, pour relier la prédiction à son dossier.",
    )

    def features(self) -> dict[str, Any]:
        """The employee's fields; an optional field left out is absent (never stored)."""
        # Read from the instance dict (a batch calls this 1,000 times).
        values = self.__dict__
        return {
            name: values[name]
            for name in v.FEATURE_NAMES
            if values[name] is not None or name in _MODEL_INPUTS
        }


class BatchPredictionRequest(BaseModel):
    """Un lot de 1 à 1 000 employés, validé en entier (tout ou rien)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"employes": [EXAMPLE_EMPLOYEE]}]}
    )

    employes: list[PredictionRequest] = Field(min_length=1, max_length=1000)


class Label(StrEnum):
    DEPART = "depart"
    RESTE = "reste"


class Risk(StrEnum):
    FAIBLE = "faible"
    MOYEN = "moyen"
    ELEVE = "eleve"


class Factor(BaseModel):
    """Un facteur de l'explication : sa contribution au logit du risque."""

    variable: str = Field(description="Nom technique de la variable du modèle.")
    libelle: str = Field(
        description="Libellé en français, celui de l'application et de la CLI. Une variable "
        "oui/non y est nommée par sa question, suivie de la réponse de l'employé "
        "(« Participe au PEE (plan d'épargne entreprise) : non ») ; `valeur` reste celle de "
        "la variable du modèle (`sans_participation_pee` = 1 : ne participe pas)."
    )
    valeur: float | str | bool | None = Field(description="Valeur de l'employé.")
    contribution: float = Field(
        description="Contribution au logit (positive : augmente le risque)."
    )


class Explanation(BaseModel):
    """Pourquoi ce score : les facteurs qui poussent le risque vers le haut ou le bas."""

    valeur_de_base: float = Field(description="Logit moyen de la population d'entraînement.")
    logit: float = Field(
        description="Score du modèle linéaire : valeur de base + somme des contributions. La "
        "probabilité affichée est sigmoïde(logit), recalibrée quand la version le prévoit "
        "(transformation croissante : même ordre, mêmes facteurs)."
    )
    facteurs_hausse: list[Factor]
    facteurs_baisse: list[Factor]


class PredictionResponse(BaseModel):
    """Le résultat d'une prédiction, tel qu'il a été enregistré."""

    prediction_id: int
    probabilite_depart: float = Field(ge=0, le=1)
    prediction: Label
    seuil: float = Field(description="Seuil de décision du modèle.")
    niveau_risque: Risk = Field(
        description="Code stable : faible : probabilité < seuil/2 ; moyen : entre seuil/2 et "
        "le seuil ; eleve : probabilité ≥ seuil."
    )
    libelle_risque: str = Field(
        description="Le niveau en français, pour les personnes (ex. « Au-dessus du seuil "
        "d'alerte »)."
    )
    lecture: str = Field(
        description="Comment lire le score, en français : probabilité, seuil d'alerte, action "
        "recommandée et, si la version les fournit, combien d'employés estimés à ce niveau "
        "sont partis (prédictions hors-pli de la fiche du modèle)."
    )
    explication: Explanation
    model_version: str
    id_employee: int | None = None
    horodatage: datetime


class BatchPredictionResponse(BaseModel):
    """Les résultats d'un lot, dans l'ordre des employés envoyés."""

    batch_id: str
    nombre: int
    predictions: list[PredictionResponse]


class RecordedPrediction(PredictionResponse):
    """Une prédiction enregistrée avec son entrée : ce qui a été envoyé, par qui et quand."""

    source: Literal["api", "batch", "employee", "web"]
    request_id: str = Field(description="Identifiant de la requête, attribué par le serveur.")
    client_request_id: str | None = Field(
        default=None, description="L'en-tête X-Request-ID envoyé par le client, s'il y en avait un."
    )
    client: str | None = Field(description="Identifiant public de la clé API qui l'a demandée.")
    entree: dict[str, Any] = Field(description="Les caractéristiques envoyées au modèle.")


class PredictionPage(BaseModel):
    """Une page de prédictions ; `curseur_suivant` sert à demander la suivante."""

    predictions: list[RecordedPrediction]
    curseur_suivant: str | None


class EmployeeRecord(BaseModel):
    """Le dossier enregistré d'un employé (les trois extraits joints)."""

    model_config = ConfigDict(extra="allow")

    id_employee: int
    a_quitte_l_entreprise: bool


class EmployeePage(BaseModel):
    employes: list[EmployeeRecord]
    curseur_suivant: str | None


class FeatureInfo(BaseModel):
    nom: str
    libelle: str
    type: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    valeurs: list[str] | None = None
    obligatoire: bool = Field(
        default=True, description="Faux pour un champ que le modèle n'utilise pas (facultatif)."
    )


class AuditCheckpoint(BaseModel):
    """The signed head of the audit chain (field names as in the published files)."""

    position: int = Field(description="Position du dernier lien de la chaîne.")
    prediction_id: int = Field(description="Dernière prédiction scellée.")
    chain_hash: str = Field(description="Lien (HMAC-SHA256) à cette position.")
    published_at: str = Field(description="Date de signature (ISO 8601, UTC).")
    key_id: str = Field(description="Empreinte publique de la clé d'audit utilisée.")
    signature: str = Field(description="HMAC-SHA256 du point de contrôle.")


class ModelInfo(BaseModel):
    """Le modèle actif : version, métriques, seuil et variables attendues."""

    version: str
    algorithme: str
    seuil: float
    critere_seuil: str
    metriques: dict[str, Any]
    sha256: str
    cree_le: datetime
    variables: list[FeatureInfo]


class Health(BaseModel):
    statut: Literal["ok"]
    version: str
    """Version du service (celle de pyproject.toml) : ce qui tourne réellement."""
    base_persistante: bool | None = None
    """La base survit-elle à un redémarrage ? (null tant qu'elle n'est pas résolue)"""
    avertissement: str | None = None
    """Présent quand la base n'est pas persistante (démonstration)."""


class Readiness(BaseModel):
    statut: Literal["pret", "indisponible"]
    base_de_donnees: str
    base_persistante: bool
    modele: str | None
    raison: str | None = None


class ProblemError(BaseModel):
    champ: str
    message: str
    ligne: int | None = None


class Problem(BaseModel):
    """Une erreur au format RFC 9457 (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] = Field(default_factory=list)
    nombre_erreurs: int | None = Field(
        default=None,
        description="Nombre total d'erreurs quand `errors` n'en liste que les premières.",
    )


def feature_catalogue() -> list[FeatureInfo]:
    """The expected features with their types and domains (for GET /v1/model and the web UI)."""
    return [
        FeatureInfo(
            nom=f.name,
            libelle=f.label,
            type={"int": "entier", "float": "nombre", "bool": "booléen"}.get(f.kind, "catégorie"),
            description=v.help_text(f),
            minimum=f.low,
            maximum=f.high,
            valeurs=list(f.categories) or None,
            obligatoire=f.required,
        )
        for f in v.FEATURES
    ]


class OutcomeRequest(BaseModel):
    """Ce qui est arrivé à un employé : parti à une date, ou encore présent à une date."""

    model_config = ConfigDict(extra="forbid")

    statut: Literal["parti", "present"] = Field(
        description="parti : a quitté l'entreprise à la date ; present : y était encore à la date."
    )
    date: IsoDate = Field(description="Date du départ, ou date à laquelle il était présent.")


class OutcomeResponse(BaseModel):
    """Le constat enregistré (ou déjà enregistré à l'identique)."""

    id_employee: int
    statut: str
    date: dt.date
    source: str = Field(description="api, cli ou import.")
    enregistre_par: str
    enregistre_le: datetime
    deja_enregistre: bool = Field(description="Vrai si ce constat existait déjà (rien d'ajouté).")


class VersionPerformanceInfo(BaseModel):
    model_version: str
    predictions: int = Field(description="Employés identifiés prédits par cette version.")
    resolues: int = Field(description="Prédictions dont l'issue est connue à l'horizon.")
    en_attente: int
    departs: int
    signales: int = Field(description="Prédictions résolues au-dessus du seuil.")
    vrais_positifs: int
    precision: float | None = Field(description="Part des signalés qui sont partis.")
    rappel: float | None = Field(description="Part des départs qui avaient été signalés.")
    probabilite_moyenne: float | None
    taux_observe: float | None
    ecart_calibration: float | None = Field(
        description="Taux observé moins probabilité moyenne prédite (calibration globale)."
    )
    precision_plancher: float
    rappel_plancher: float
    statut: str = Field(description="donnees_insuffisantes, conforme ou reentrainer.")
    libelle_statut: str
    raisons: list[str]


class PerformanceResponse(BaseModel):
    """Performance réalisée : prédictions passées comparées aux issues constatées par les RH."""

    horizon_jours: int
    calcule_le: datetime
    regle: str = Field(description="Quand réentraîner (seuils).")
    versions: list[VersionPerformanceInfo]
