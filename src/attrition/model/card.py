"""The French model card (``docs/modele.md``), written from the numbers of the report.

:func:`render_model_card` takes what :func:`attrition.model.report.render_report` measured
and the model's metadata; nothing in the card is typed by hand, so it cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrition.data import vocabulary as voc
from attrition.model import features as feat
from attrition.model.report import CANDIDATE_METRICS, FIGURE_PREFIX, _fr
from attrition.model.summary import FIGURE_FILES


def _count(value: int) -> str:
    """An integer with the French thousands separator (narrow no-break space)."""
    return f"{value:,}".replace(",", "\u202f")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{_fr(100 * value, 1)} %"


def _fairness_markdown(rows: Sequence[Mapping[str, Any]], header: str) -> list[str]:
    lines = [
        f"| {header} | Effectif | Taux de départ observé | Taux de signalement | Rappel "
        "| Précision |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['group']} | {row['n']} | {_pct(row['observed_rate'])} | "
        f"{_pct(row['positive_rate'])} | {_pct(row['recall'])} | {_pct(row['precision'])} |"
        for row in rows
    ]
    return lines


def _gap_sentence(rows: Sequence[Mapping[str, Any]], what: str) -> str:
    """Range of the flag rate and of the recall over the groups, and whether the most
    flagged group is also the one that leaves most (read from the numbers, not assumed)."""
    flagged = sorted(rows, key=lambda row: row["positive_rate"])
    most, leaves_most = flagged[-1], max(rows, key=lambda row: row["observed_rate"])
    sentence = (
        f"Par {what}, le taux de signalement va de {_pct(flagged[0]['positive_rate'])} "
        f"({flagged[0]['group']}) à {_pct(most['positive_rate'])} ({most['group']})"
    )
    recalls = sorted(
        (row for row in rows if row["recall"] is not None), key=lambda row: row["recall"]
    )
    if recalls:
        sentence += (
            f" ; le rappel va de {_pct(recalls[0]['recall'])} ({recalls[0]['group']}) "
            f"à {_pct(recalls[-1]['recall'])} ({recalls[-1]['group']})"
        )
    if most["group"] == leaves_most["group"]:
        sentence += (
            f". Le groupe le plus signalé ({most['group']}) est aussi celui qui part le plus "
            f"({_pct(most['observed_rate'])} de départs)."
        )
    else:
        sentence += (
            f". Le groupe le plus signalé ({most['group']}) n'est pas celui qui part le plus "
            f"({leaves_most['group']}, {_pct(leaves_most['observed_rate'])} de départs) : "
            "écart à examiner."
        )
    return sentence


def render_model_card(
    metadata: Mapping[str, Any], figures: Mapping[str, Any], out_path: Path
) -> str:
    """Write the French Markdown model card (``docs/modele.md``) and return its text.

    Parameters
    ----------
    metadata:
        :meth:`TrainedModel.metadata`, optionally with ``version``, ``trained_at`` and
        ``data`` (``source``, ``extracted_at``, ``sha256``: file -> checksum) added by the
        registry.
    figures:
        What :func:`render_report` returned.
    out_path:
        Path of the Markdown file; figures are referenced as ``img/modele/*.png``, relative
        to it.
    """
    metrics = metadata.get("metrics", {})
    cv = metrics.get("cv") or {}
    oof = metrics.get("oof", {})
    calibration = metrics.get("calibration", {})
    data = metadata.get("data", {})
    n = int(metadata.get("n_samples", 0))
    n_positive = int(metadata.get("n_positive", 0))
    files = figures.get("figures", FIGURE_FILES)

    def image(key: str, alt: str) -> str:
        return f"![{alt}]({FIGURE_PREFIX}/{files[key]})"

    lines = [
        "# Fiche du modèle d'attrition",
        "",
        f"- Version : **{metadata.get('version', 'non enregistrée')}**",
        f"- Entraînement : {metadata.get('trained_at', 'date non enregistrée')}",
        f"- Algorithme : **{metadata.get('algorithm_label', metadata.get('algorithm', '?'))}**",
        "",
        "Cette fiche est générée par `attrition model report` à partir des métadonnées du "
        "modèle et de ses prédictions hors-pli : ne pas la modifier à la main.",
        "",
        "## Données et cible",
        "",
        f"- {_count(n)} employés de TechNova Partners, dont {_count(n_positive)} partis "
        f"({_pct(n_positive / n if n else None)}).",
        "- Trois extraits réunis par employé : SIRH (contrat, rémunération, profil), "
        "évaluation annuelle, sondage employés.",
        "- Cible : `a_quitte_l_entreprise` (Oui = l'employé a quitté l'entreprise).",
        "- Le modèle estime la probabilité qu'un employé quitte l'entreprise ; il ne dit ni "
        "quand, ni pourquoi avec certitude.",
        "",
        "## Variables",
        "",
        "Les entrées brutes sont les champs du vocabulaire (`attrition.data.vocabulary`). "
        "Le modèle en dérive les variables suivantes (`attrition.model.features`) :",
        "",
        "| Variable | Libellé | Type |",
        "| --- | --- | --- |",
    ]
    for name in metadata.get("numeric_features", feat.NUMERIC_FEATURES):
        lines.append(f"| `{name}` | {feat.FEATURE_LABELS.get(name, name)} | numérique |")
    for name in metadata.get("categorical_features", feat.CATEGORICAL_FEATURES):
        lines.append(f"| `{name}` | {feat.FEATURE_LABELS.get(name, name)} | catégorielle |")
    excluded = metadata.get("excluded_features", feat.EXCLUDED_FROM_MODEL)
    lines += [
        "",
        "Les durées en années entrent sur une échelle logarithmique (`log(1 + années)`) et le "
        "revenu en logarithme ; les quatre satisfactions entrent comme catégories, avec leur "
        "moyenne, leur minimum et le nombre de réponses au plus bas.",
        "",
        f"Non utilisées par le modèle : {', '.join(f'`{name}`' for name in excluded)} "
        "(critères protégés, art. L1132-1 du Code du travail ; `genre` sert uniquement à "
        "l'audit d'équité), l'identifiant et les colonnes constantes "
        f"({', '.join(f'`{name}`' for name in voc.CONSTANT_COLUMNS)}).",
        "",
        "## Candidats comparés",
        "",
    ]
    protocol = cv.get("protocol", {})
    if cv:
        lines += [
            f"Validation croisée stratifiée répétée : {protocol.get('n_splits')} plis × "
            f"{protocol.get('repeats')} répétitions (graine {protocol.get('seed')}). Dans chaque "
            "pli, toute la préparation (mise à l'échelle, encodage) et le seuil sont appris sur "
            f"la seule partie d'entraînement ({protocol.get('inner_splits')} plis internes). "
            "Moyenne ± écart-type sur les plis :",
            "",
            "| Candidat | " + " | ".join(label for _, label in CANDIDATE_METRICS) + " |",
            "| --- | " + " | ".join("---:" for _ in CANDIDATE_METRICS) + " |",
        ]
        for name, result in cv.get("candidates", {}).items():
            summary = result["summary"]
            cells = [
                f"{_fr(summary[key]['mean'])} ± {_fr(summary[key]['std'])}"
                for key, _ in CANDIDATE_METRICS
            ]
            marker = " **(retenu)**" if name == metadata.get("algorithm") else ""
            lines.append(f"| {result['label']}{marker} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Règle de choix : meilleure PR-AUC moyenne (la classe d'intérêt est rare : 16 %), "
            "puis meilleure ROC-AUC, puis le modèle le plus simple.",
        ]
    else:
        lines.append("Pas de rapport de validation croisée joint à ce modèle.")

    confusion = figures.get("confusion", oof.get("confusion", [[0, 0], [0, 0]]))
    lines += [
        "",
        "## Modèle retenu et seuil",
        "",
        f"- Algorithme : {metadata.get('algorithm_label', metadata.get('algorithm'))}, "
        f"hyper-paramètres `{metadata.get('hyper_parameters', {})}`.",
        f"- Seuil de signalement : **{_fr(metadata.get('threshold'))}** (un employé est signalé "
        "quand sa probabilité atteint ce seuil).",
        f"- Critère : {metadata.get('threshold_criterion', '')}",
        f"- Sur les prédictions hors-pli de l'ensemble des données (5 plis) : ROC-AUC "
        f"{_fr(oof.get('roc_auc'))}, PR-AUC {_fr(oof.get('pr_auc'))}, rappel "
        f"{_pct(oof.get('recall'))}, précision {_pct(oof.get('precision'))}, F1 "
        f"{_fr(oof.get('f1'))}, Brier {_fr(oof.get('brier'))}.",
        f"- Au seuil : {confusion[1][1]} départs détectés sur {confusion[1][0] + confusion[1][1]}, "
        f"{confusion[0][1]} fausses alertes sur {confusion[0][0] + confusion[0][1]} employés "
        "restés.",
        "- Calibration : pente de recalibration "
        f"{_fr(calibration.get('slope'), 2)} (1 = parfaite), probabilité moyenne prédite "
        f"{_pct(calibration.get('mean_predicted'))} pour un taux observé de "
        f"{_pct(calibration.get('observed_rate'))}. "
        + (
            "Le modèle a été recalibré (sigmoïde) car ces valeurs sortaient des tolérances."
            if metadata.get("calibrated")
            else "Les probabilités sont bien calibrées : le modèle n'est pas recalibré."
        ),
        "",
        "## Figures",
        "",
        image("roc", "Courbe ROC"),
        "",
        image("precision_recall", "Courbe précision-rappel"),
        "",
        image("calibration", "Courbe de calibration"),
        "",
        image("confusion", "Matrice de confusion au seuil"),
        "",
        image("importance", "Importance globale des variables"),
        "",
    ]
    top = figures.get("importance", [])[:5]
    if top:
        lines += [
            "Variables les plus influentes : "
            + ", ".join(f"{row['label']} ({_fr(row['value'], 2)})" for row in top)
            + ". Pour un employé donné, l'API détaille la contribution exacte de chaque "
            "variable à son score.",
            "",
        ]

    fairness = figures.get("fairness", {})
    lines += [
        "## Équité",
        "",
        "Taux calculés sur les prédictions hors-pli, au seuil retenu. Le taux de signalement "
        "est la part des employés signalés ; le rappel, la part des départs effectivement "
        "signalés ; la précision, la part des signalés qui sont partis.",
        "",
        *_fairness_markdown(fairness.get("genre", []), "Genre"),
        "",
        *_fairness_markdown(fairness.get("age", []), "Âge"),
        "",
        image("fairness", "Taux par genre et par tranche d'âge"),
        "",
    ]
    if fairness.get("genre") and fairness.get("age"):
        lines += [
            _gap_sentence(fairness["genre"], "genre"),
            "",
            _gap_sentence(fairness["age"], "tranche d'âge"),
            "",
            "Lecture : un écart de taux de signalement n'est pas en soi une discrimination "
            "quand il suit un écart de taux de départ observé (colonne « taux de départ "
            "observé ») ; un écart de rappel, lui, signifie que les départs d'un groupe sont "
            "moins bien repérés. Le genre n'est pas une entrée du modèle, mais des variables "
            "corrélées peuvent le refléter ; l'âge est une entrée du modèle et un critère "
            "protégé. Les petits groupes (voir les effectifs) ont des taux très incertains. "
            "Ces écarts sont à suivre à chaque réentraînement.",
            "",
        ]

    lines += [
        "## Usage prévu et limites",
        "",
        "- **Aide à la décision uniquement.** Le score aide les équipes RH à prioriser des "
        "entretiens de fidélisation ; il ne fonde jamais seul une décision concernant un "
        "employé (RGPD, article 22 : pas de décision fondée exclusivement sur un traitement "
        "automatisé produisant des effets juridiques ou significatifs). Une personne examine "
        "chaque cas, avec les explications fournies, et l'employé peut demander "
        "l'intervention humaine, exprimer son point de vue et contester.",
        "- Usages exclus : évaluation de la performance, rémunération, promotion, sanction, "
        "licenciement, recrutement.",
        "- Les probabilités sont des estimations moyennes : sur 100 employés signalés, "
        f"environ {round(100 * (oof.get('precision') or 0))} partent dans les données "
        "historiques ; un score élevé n'est pas une certitude.",
        "- Le modèle est corrélationnel : une contribution explique le score, pas la cause "
        "du départ.",
        "- Il ne vaut que pour une population semblable à celle d'entraînement (TechNova, "
        "mêmes postes et départements) ; hors de ces domaines, l'API refuse les valeurs.",
        "- Les données des employés sont des données personnelles : information des "
        "salariés, base légale, durée de conservation et analyse d'impact (AIPD) relèvent "
        "du responsable de traitement.",
        "",
        "## Origine et ancienneté des données",
        "",
        f"- Source : {data.get('source', 'extraits TechNova (SIRH, évaluations, sondage)')} ; "
        "adaptation française du jeu public IBM HR Analytics Employee Attrition.",
        f"- Date d'extraction : {data.get('extracted_at', 'non communiquée')}. Le modèle "
        "vieillit avec elles : politiques RH, rémunérations et marché du travail changent.",
    ]
    for file, checksum in data.get("sha256", {}).items():
        lines.append(f"- `{file}` : SHA-256 `{checksum}`")
    lines += [
        "",
        "## Protocole de réentraînement",
        "",
        "À chaque nouvel extrait, et au moins une fois par an :",
        "",
        "1. Évaluer les candidats, de façon reproductible :"
        " `attrition model evaluate --seed 7 --repeats 5 --json`.",
        "2. Entraîner et enregistrer une nouvelle version (inactive) : `attrition train`.",
        "3. Régénérer cette fiche et ses figures : `attrition model report` ; vérifier les "
        "métriques et la section équité.",
        "4. Activer la version après relecture : `attrition model activate VERSION`.",
        "",
        "Ne pas activer une version dont la PR-AUC ou le rappel baisse nettement, ou dont "
        "les écarts d'équité se creusent, sans analyse.",
        "",
    ]
    text = "\n".join(lines)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return text
