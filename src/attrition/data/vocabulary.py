"""The TechNova dataset's vocabulary: column names, domains and French labels.

This module is the single source of truth for what a valid employee record is. The loader,
the database constraints, the model features and the API schemas all read their domains from
here, so that a value the database refuses is also refused by the API, and the categories the
model was trained on are exactly the ones the API accepts.

Clean names fix the typos of the source headers (``travailless``, ``augementation``,
``annes_``); :data:`SOURCE_COLUMNS` maps every source header to its clean name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Genre(StrEnum):
    F = "F"
    M = "M"


class StatutMarital(StrEnum):
    CELIBATAIRE = "Célibataire"
    MARIE = "Marié(e)"
    DIVORCE = "Divorcé(e)"


class Departement(StrEnum):
    COMMERCIAL = "Commercial"
    CONSULTING = "Consulting"
    RESSOURCES_HUMAINES = "Ressources Humaines"


class Poste(StrEnum):
    ASSISTANT_DE_DIRECTION = "Assistant de Direction"
    CADRE_COMMERCIAL = "Cadre Commercial"
    CONSULTANT = "Consultant"
    DIRECTEUR_TECHNIQUE = "Directeur Technique"
    MANAGER = "Manager"
    REPRESENTANT_COMMERCIAL = "Représentant Commercial"
    RESSOURCES_HUMAINES = "Ressources Humaines"
    SENIOR_MANAGER = "Senior Manager"
    TECH_LEAD = "Tech Lead"


class DomaineEtude(StrEnum):
    AUTRE = "Autre"
    ENTREPRENEURIAT = "Entrepreunariat"  # the dataset's spelling
    INFRA_CLOUD = "Infra & Cloud"
    MARKETING = "Marketing"
    RESSOURCES_HUMAINES = "Ressources Humaines"
    TRANSFORMATION_DIGITALE = "Transformation Digitale"


class FrequenceDeplacement(StrEnum):
    AUCUN = "Aucun"
    OCCASIONNEL = "Occasionnel"
    FREQUENT = "Frequent"


@dataclass(frozen=True, slots=True)
class Field:
    """One feature of an employee as the model and the API see it.

    ``low``/``high`` are the accepted range (the observed domain, widened where a real
    employee could fall outside it); ``observed`` is the range found in the extracts.
    """

    name: str
    label: str
    kind: str  # "int", "float", "bool" or "category"
    help: str  # what the label does not say (may be empty); the range is added by help_text()
    low: float | None = None
    high: float | None = None
    observed: tuple[float, float] | None = None
    categories: tuple[str, ...] = ()
    #: False for a field the model does not use: asked for nothing, stored only when given.
    required: bool = True


def _cats(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


#: The features of one employee that the model takes, in a fixed order (the API input).
FEATURES: Final[tuple[Field, ...]] = (
    Field("age", "Âge", "int", "En années.", 16, 70, (18, 60)),
    Field(
        "genre",
        "Genre",
        "category",
        "Facultatif : le modèle ne l'utilise pas (critère protégé) ; non enregistré s'il est omis.",
        categories=_cats(Genre),
        required=False,
    ),
    Field(
        "revenu_mensuel",
        "Revenu mensuel",
        "int",
        "Salaire mensuel brut.",
        500,
        50000,
        (1009, 19999),
    ),
    Field(
        "statut_marital",
        "Statut marital",
        "category",
        "Facultatif : le modèle ne l'utilise pas (critère protégé) ; non enregistré s'il est omis.",
        categories=_cats(StatutMarital),
        required=False,
    ),
    Field("departement", "Département", "category", "", categories=_cats(Departement)),
    Field("poste", "Poste", "category", "", categories=_cats(Poste)),
    Field(
        "nombre_experiences_precedentes",
        "Nombre d'expériences précédentes",
        "int",
        "Employeurs avant l'entreprise.",
        0,
        20,
        (0, 9),
    ),
    Field(
        "annees_experience_totale",
        "Années d'expérience totale",
        "int",
        "Toutes entreprises confondues ; au plus l'âge moins 14 ans.",
        0,
        56,
        (0, 40),
    ),
    Field(
        "annees_dans_l_entreprise",
        "Années dans l'entreprise",
        "int",
        "Au plus l'expérience totale.",
        0,
        56,
        (0, 40),
    ),
    Field(
        "annees_dans_le_poste_actuel",
        "Années dans le poste actuel",
        "int",
        "Au plus les années dans l'entreprise.",
        0,
        56,
        (0, 18),
    ),
    Field(
        "satisfaction_employee_environnement",
        "Satisfaction (environnement)",
        "int",
        "Réponse au sondage sur l'environnement de travail (1 = la plus basse).",
        1,
        4,
        (1, 4),
    ),
    Field(
        "note_evaluation_precedente",
        "Note d'évaluation précédente",
        "int",
        "",
        1,
        4,
        (1, 4),
    ),
    Field(
        "niveau_hierarchique_poste",
        "Niveau hiérarchique",
        "int",
        "",
        1,
        5,
        (1, 5),
    ),
    Field(
        "satisfaction_employee_nature_travail",
        "Satisfaction (nature du travail)",
        "int",
        "Réponse au sondage (1 = la plus basse).",
        1,
        4,
        (1, 4),
    ),
    Field(
        "satisfaction_employee_equipe",
        "Satisfaction (équipe)",
        "int",
        "Réponse au sondage (1 = la plus basse).",
        1,
        4,
        (1, 4),
    ),
    Field(
        "satisfaction_employee_equilibre_pro_perso",
        "Satisfaction (équilibre pro/perso)",
        "int",
        "Équilibre vie professionnelle / vie personnelle, réponse au sondage (1 = la plus basse).",
        1,
        4,
        (1, 4),
    ),
    Field(
        "note_evaluation_actuelle",
        "Note d'évaluation actuelle",
        "int",
        "3 ou 4 dans les données.",
        1,
        4,
        (3, 4),
    ),
    Field(
        "heures_supplementaires",
        "Heures supplémentaires",
        "bool",
        "L'employé en fait-il ?",
    ),
    Field(
        "augmentation_salaire_precedente",
        "Augmentation de salaire précédente (%)",
        "float",
        "Dernière augmentation, en pourcentage du salaire.",
        0,
        100,
        (11, 25),
    ),
    Field(
        "nombre_participation_pee",
        "Participations au PEE",
        "int",
        "Plan d'épargne entreprise.",
        0,
        3,
        (0, 3),
    ),
    Field(
        "nb_formations_suivies",
        "Formations suivies",
        "int",
        "L'an dernier.",
        0,
        20,
        (0, 6),
    ),
    Field(
        "distance_domicile_travail",
        "Distance domicile-travail",
        "int",
        "En kilomètres.",
        0,
        200,
        (1, 29),
    ),
    Field(
        "niveau_education",
        "Niveau d'éducation",
        "int",
        "",
        1,
        5,
        (1, 5),
    ),
    Field(
        "domaine_etude",
        "Domaine d'étude",
        "category",
        "",
        categories=_cats(DomaineEtude),
    ),
    Field(
        "frequence_deplacement",
        "Fréquence des déplacements",
        "category",
        "Déplacements professionnels.",
        categories=_cats(FrequenceDeplacement),
    ),
    Field(
        "annees_depuis_la_derniere_promotion",
        "Années depuis la dernière promotion",
        "int",
        "Au plus les années dans l'entreprise.",
        0,
        56,
        (0, 15),
    ),
    Field(
        "annees_sous_responsable_actuel",
        "Années sous le responsable actuel",
        "int",
        "Au plus les années dans l'entreprise.",
        0,
        56,
        (0, 17),
    ),
)


def plain_number(value: float) -> str:
    """A number as French readers write it: ``50 000`` (narrow no-break space), ``11,5``."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:,}".replace(",", "\u202f").replace(".", ",")


def help_text(field: Field) -> str:
    """The help shown beside a field: its own help, then its accepted range, each once."""
    parts = [field.help] if field.help else []
    if field.low is not None and field.high is not None:
        parts.append(f"De {plain_number(field.low)} à {plain_number(field.high)}.")
    return " ".join(parts)


FEATURES_BY_NAME: Final[dict[str, Field]] = {f.name: f for f in FEATURES}
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES)
#: Fields read from the extracts but not given to the model: sex and family situation are
#: protected criteria (Code du travail, art. L1132-1). The API, the CSV and the web form do
#: not ask for them (GDPR art. 5-1-c, data minimisation); ``genre`` serves the fairness audit.
NOT_MODEL_INPUTS: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES if not f.required)
#: Fields every prediction request must hold (the model's raw inputs).
MODEL_INPUTS: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES if f.required)

#: Columns that are constant in the extracts and carry no information for the model.
CONSTANT_COLUMNS: Final[tuple[str, ...]] = (
    "nombre_heures_travaillees",
    "nombre_employes_sous_responsabilite",
    "ayant_enfants",
)

TARGET: Final = "a_quitte_l_entreprise"

#: Source header -> clean column name, per extract (the loader maps from these exact headers).
SIRH_COLUMNS: Final[dict[str, str]] = {
    "id_employee": "id_employee",
    "age": "age",
    "genre": "genre",
    "revenu_mensuel": "revenu_mensuel",
    "statut_marital": "statut_marital",
    "departement": "departement",
    "poste": "poste",
    "nombre_experiences_precedentes": "nombre_experiences_precedentes",
    "nombre_heures_travailless": "nombre_heures_travaillees",
    "annee_experience_totale": "annees_experience_totale",
    "annees_dans_l_entreprise": "annees_dans_l_entreprise",
    "annees_dans_le_poste_actuel": "annees_dans_le_poste_actuel",
}
EVAL_COLUMNS: Final[dict[str, str]] = {
    "satisfaction_employee_environnement": "satisfaction_employee_environnement",
    "note_evaluation_precedente": "note_evaluation_precedente",
    "niveau_hierarchique_poste": "niveau_hierarchique_poste",
    "satisfaction_employee_nature_travail": "satisfaction_employee_nature_travail",
    "satisfaction_employee_equipe": "satisfaction_employee_equipe",
    "satisfaction_employee_equilibre_pro_perso": "satisfaction_employee_equilibre_pro_perso",
    "eval_number": "eval_number",
    "note_evaluation_actuelle": "note_evaluation_actuelle",
    "heure_supplementaires": "heures_supplementaires",
    "augementation_salaire_precedente": "augmentation_salaire_precedente",
}
SONDAGE_COLUMNS: Final[dict[str, str]] = {
    "a_quitte_l_entreprise": "a_quitte_l_entreprise",
    "nombre_participation_pee": "nombre_participation_pee",
    "nb_formations_suivies": "nb_formations_suivies",
    "nombre_employee_sous_responsabilite": "nombre_employes_sous_responsabilite",
    "code_sondage": "code_sondage",
    "distance_domicile_travail": "distance_domicile_travail",
    "niveau_education": "niveau_education",
    "domaine_etude": "domaine_etude",
    "ayant_enfants": "ayant_enfants",
    "frequence_deplacement": "frequence_deplacement",
    "annees_depuis_la_derniere_promotion": "annees_depuis_la_derniere_promotion",
    "annes_sous_responsable_actuel": "annees_sous_responsable_actuel",
}

EXTRACT_FILES: Final[dict[str, str]] = {
    "sirh": "extrait_sirh.csv",
    "eval": "extrait_eval.csv",
    "sondage": "extrait_sondage.csv",
}

DATA_URL_BASE: Final = (
    "https://raw.githubusercontent.com/shah-data-scientist/HR-ATTRITION-RATE/"
    "ffe8d469ce4e60561c9f15fe1012639bdcfc1202/data/"
)
#: Expected SHA-256 of each extract (also in the data folder's SHA256SUMS).
EXTRACT_SHA256: Final[dict[str, str]] = {
    "extrait_eval.csv": "c657028f87ee0dbc68cfa10facae4c8a4c6f23e21270f0b775e12a828c7ce9ad",  # pragma: allowlist secret
    "extrait_sirh.csv": "6c264f88ff342bcabf72dacaf33a92feca4c4e57ad339163cc45d713325c318a",  # pragma: allowlist secret
    "extrait_sondage.csv": "490f7c6f25cd229c7b07bbca93179a040256e21f34bc78810cb5280c18f801ea",  # pragma: allowlist secret
}


def inputs_markdown(excluded: tuple[str, ...] | list[str] | None = None) -> str:
    """What a prediction asks for, in French Markdown: the one text of the RGPD page and the card.

    Parameters
    ----------
    excluded:
        Fields the model leaves out (the model's metadata); :data:`NOT_MODEL_INPUTS` by default.
    """
    left_out = tuple(excluded) if excluded is not None else NOT_MODEL_INPUTS
    asked = [f for f in FEATURES if f.name not in left_out]
    labels = ", ".join(f.label[0].lower() + f.label[1:] for f in asked)
    unused = ", ".join(f"`{name}`" for name in left_out)
    constant = ", ".join(f"`{name}`" for name in CONSTANT_COLUMNS)
    return (
        f"Une prédiction demande {len(asked)} champs, tous utilisés par le modèle : {labels}. "
        f"Non utilisés par le modèle, donc facultatifs partout (API, lot, fichier CSV, "
        f"formulaire) et jamais enregistrés s'ils sont omis : {unused} (critères protégés, "
        "art. L1132-1 du Code du travail ; `genre` sert uniquement à l'audit d'équité, à partir "
        f"des extraits RH). Non utilisés non plus : l'identifiant et les colonnes constantes "
        f"({constant}).\n"
    )
