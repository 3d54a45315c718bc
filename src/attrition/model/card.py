"""The French model card (``docs/modele.md``), written from the numbers of the report.

:func:`render_model_card` takes what :func:`attrition.model.report.render_report` measured
and the model's metadata; nothing in the card is typed by hand, so it cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrition.data import vocabulary as voc
from attrition.model import acceptance, maintenance
from attrition.model import calibration as calibration_module
from attrition.model import features as feat
from attrition.model.card_plain import in_short_markdown, times
from attrition.model.report import (
    CANDIDATE_METRICS,
    FIGURE_PREFIX,
    HONEST_ROWS,
    _flat_rows,
    _fr,
    _interval_text,
    _nested_fairness_markdown,
)
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


def _honest_markdown(honest: Mapping[str, Any]) -> list[str]:
    figures = honest.get("figures") or {}
    if not figures:
        return []
    per_100 = figures.get("flagged_leavers_per_100") or {}
    lines = [
        "## Chiffres opérationnels (validation croisée imbriquée)",
        "",
        "Chaque employé est évalué par le modèle d'un pli externe qui ne l'a pas vu, et "
        "signalé au seuil choisi dans les plis internes de ce pli : ces chiffres sont ceux "
        "qu'on peut attendre sur de nouveaux employés. Valeurs calculées sur l'ensemble des "
        "prédictions hors-pli, moyennées sur les répétitions ; entre crochets, l'intervalle "
        f"de confiance à 95 % : {honest.get('method', 'bootstrap')}. L'erreur de calibration "
        "attendue (ECE) est donnée sans intervalle : biaisée vers le haut à chaque tirage, "
        "son intervalle percentile ne la couvrirait pas.",
        "",
        "| Indicateur | Valeur [IC 95 %] |",
        "| --- | ---: |",
    ]
    lines += [
        f"| {label} | {_interval_text(figures.get(key), percent)} |"
        for key, label, percent in HONEST_ROWS
        if figures.get(key)
    ]
    if per_100.get("value") is not None:
        lines.append(
            f"| Départs sur 100 employés signalés | {round(per_100['value'])} "
            f"[{round(per_100['low'])} ; {round(per_100['high'])}] |"
            if per_100.get("low") is not None
            else f"| Départs sur 100 employés signalés | {round(per_100['value'])} |"
        )
    return [*lines, ""]


def _calibration_markdown(
    metadata: Mapping[str, Any],
    calibration: Mapping[str, Any],
    decision: Mapping[str, Any],
    honest: Mapping[str, Any],
    figures: Mapping[str, Any],
) -> list[str]:
    raw = calibration.get("raw") or {}
    lines = ["## Calibration", ""]
    if decision.get("n_folds"):
        verdict = (
            "la recalibration est **conservée**"
            if decision.get("kept")
            else "la recalibration n'est **pas conservée** (gain non significatif)"
        )
        lines += [
            f"Règle fixée avant l'évaluation : {decision.get('rule', calibration_module.RULE)}",
            "",
            f"Sur {times(decision['n_folds'], 'pli externe')}, Brier moyen "
            f"{_fr(decision.get('brier_raw'), 4)} sans recalibration, "
            f"{_fr(decision.get('brier_calibrated'), 4)} avec (gain "
            f"{_fr(decision.get('gain'), 4)}, erreur type "
            f"{_fr(decision.get('standard_error'), 4)}, meilleur dans "
            f"{times(decision.get('folds_improved'), 'pli')} sur {decision['n_folds']}) : "
            f"{verdict}.",
            "",
        ]
    nested = honest.get("calibration") or {}
    if nested:
        lines += [
            f"- Probabilités servies, validation croisée imbriquée : pente de calibration "
            f"{_fr(nested.get('slope'), 2)}, ordonnée à l'origine "
            f"{_fr(nested.get('intercept'), 2)} (1 et 0 = parfaite).",
        ]
    lines += [
        f"- Probabilités servies, prédictions hors-pli de la fiche (carte de recalibration "
        f"ajustée sans le pli de l'employé) : pente {_fr(calibration.get('slope'), 2)}, "
        f"ordonnée {_fr(calibration.get('intercept'), 2)}, Brier "
        f"{_fr(calibration.get('brier'), 4)}, ECE {_fr(calibration.get('ece'), 4)}, "
        f"probabilité moyenne {_pct(calibration.get('mean_predicted'))} pour un taux observé "
        f"de {_pct(calibration.get('observed_rate'))}.",
    ]
    if raw:
        lines.append(
            f"- Avant recalibration : pente {_fr(raw.get('slope'), 2)}, ordonnée "
            f"{_fr(raw.get('intercept'), 2)}, Brier {_fr(raw.get('brier'), 4)}, ECE "
            f"{_fr(raw.get('ece'), 4)}."
        )
    lines += [
        "- "
        + (
            "La recalibration (régression isotonique centrée, strictement croissante) ne "
            "change que la probabilité affichée : l'ordre des employés, la ROC-AUC, la "
            "PR-AUC et les contributions des facteurs (calculées avant la conversion en "
            "probabilité) sont ceux du modèle."
            if metadata.get("calibrated")
            else "Les probabilités servies sont celles du modèle, sans recalibration."
        ),
        "",
        "Diagramme de fiabilité (déciles des probabilités servies, prédictions hors-pli) :",
        "",
        "| Probabilité prédite moyenne | Taux de départ observé | Effectif |",
        "| ---: | ---: | ---: |",
    ]
    lines += [
        f"| {_pct(b['mean_predicted'])} | {_pct(b['observed_rate'])} | {b.get('n', '—')} |"
        for b in figures.get("calibration", [])
    ]
    return [*lines, ""]


def _per_100_sentence(honest: Mapping[str, Any], oof: Mapping[str, Any]) -> str:
    per_100 = (honest.get("figures") or {}).get("flagged_leavers_per_100") or {}
    if per_100.get("value") is not None and per_100.get("low") is not None:
        return (
            "- Les probabilités sont des estimations moyennes : sur 100 employés signalés, "
            f"environ {round(per_100['value'])} partent (intervalle à 95 % : "
            f"{round(per_100['low'])} à {round(per_100['high'])}), d'après la validation "
            "croisée imbriquée ; un score élevé n'est pas une certitude."
        )
    return (
        "- Les probabilités sont des estimations moyennes : sur 100 employés signalés, "
        f"environ {round(100 * (oof.get('precision') or 0))} partent dans les données "
        "historiques ; un score élevé n'est pas une certitude."
    )


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
    selected = (cv.get("candidates") or {}).get(metadata.get("algorithm")) or {}
    honest = selected.get("honest") or {}
    decision = selected.get("calibration") or calibration.get("decision") or {}
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
        *in_short_markdown(metadata),
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
        voc.inputs_markdown(excluded).strip(),
        "",
        "## Candidats comparés",
        "",
    ]
    protocol = cv.get("protocol", {})
    if cv:
        lines += [
            "Validation croisée stratifiée répétée : "
            f"{times(protocol.get('n_splits'), 'pli')} × "
            f"{times(protocol.get('repeats'), 'répétition')} (graine {protocol.get('seed')}). "
            "Dans chaque pli, toute la préparation (mise à l'échelle, encodage) et le seuil sont "
            "appris sur la seule partie d'entraînement "
            f"({times(protocol.get('inner_splits'), 'pli interne')}). "
            "Moyenne ± écart-type sur les plis, pour les probabilités servies (recalibrées "
            "quand la règle de calibration l'a retenu pour le candidat) :",
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
        f"- Sur les prédictions hors-pli de l'ensemble des données (5 plis, seuil choisi sur "
        f"ces mêmes prédictions, donc un peu optimiste) : ROC-AUC "
        f"{_fr(oof.get('roc_auc'))}, PR-AUC {_fr(oof.get('pr_auc'))}, rappel "
        f"{_pct(oof.get('recall'))}, précision {_pct(oof.get('precision'))}, F1 "
        f"{_fr(oof.get('f1'))}, Brier {_fr(oof.get('brier'))}. Les chiffres à retenir sont "
        "ceux de la validation croisée imbriquée, ci-dessous.",
        f"- Au seuil : {times(confusion[1][1], 'départ détecté')} sur "
        f"{confusion[1][0] + confusion[1][1]}, {times(confusion[0][1], 'fausse alerte')} sur "
        f"{times(confusion[0][0] + confusion[0][1], 'employé resté')}.",
        "",
        *_honest_markdown(honest),
        *_calibration_markdown(metadata, calibration, decision, honest, figures),
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

    nested = honest.get("fairness") or {}
    if nested.get("genre") and nested.get("age"):
        fairness = {attribute: _flat_rows(rows) for attribute, rows in nested.items()}
        lines += [
            "## Équité",
            "",
            "Taux calculés sur les prédictions hors-pli de la validation croisée imbriquée "
            "(chaque employé signalé au seuil choisi dans les plis internes de son pli), "
            "moyennés sur les répétitions, avec leur intervalle de confiance à 95 % (bootstrap "
            "stratifié sur les employés). Le taux de signalement est la part des employés "
            "signalés ; le rappel, la part des départs effectivement signalés ; la précision, "
            "la part des signalés qui sont partis.",
            "",
            *_nested_fairness_markdown(nested["genre"], "Genre"),
            "",
            *_nested_fairness_markdown(nested["age"], "Âge"),
            "",
            image("fairness", "Taux par genre et par tranche d'âge"),
            "",
        ]
    else:
        fairness = figures.get("fairness", {})
        lines += [
            "## Équité",
            "",
            "Taux calculés sur les prédictions hors-pli, au seuil retenu. Le taux de "
            "signalement est la part des employés signalés ; le rappel, la part des départs "
            "effectivement signalés ; la précision, la part des signalés qui sont partis.",
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
        _per_100_sentence(honest, oof),
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
        "### Suivre ce qui arrive réellement",
        "",
        "Les RH enregistrent l'issue des employés prédits : parti à une date, ou encore présent "
        "à une date (`POST /v1/employees/{id}/issue` avec une clé `rh` ou `admin`, "
        "`attrition outcomes record`, ou `attrition outcomes import` d'une liste de constats "
        "ou d'un extrait SIRH plus récent). Le rapport de performance réalisée compare, par "
        "version, la première prédiction de chaque employé à son issue après un horizon de "
        f"{maintenance.DEFAULT_HORIZON_DAYS} jours : précision des signalements, rappel, taux "
        "observé contre probabilité moyenne prédite (`attrition monitor performance`, "
        "`GET /v1/monitoring/performance`, jauges Prometheus `attrition_realized_*`).",
        "",
        f"**Seuils de réentraînement.** {maintenance.RULE_TEXT} Les entretiens de fidélisation "
        "déclenchés par les signalements peuvent empêcher des départs : la précision réalisée "
        "est alors une borne basse de ce que le modèle détecte.",
        "",
        "### Réentraîner",
        "",
        "À chaque nouvel extrait, quand les seuils ci-dessus le demandent, et au moins une fois "
        "par an :",
        "",
        "1. Évaluer les candidats, de façon reproductible (recalibration décidée dans les plis, "
        "intervalles à 95 %) : `attrition model evaluate --seed 7 --repeats 5 --json`.",
        "2. Entraîner et enregistrer une nouvelle version (inactive) : `attrition train`. Le "
        "registre refuse un modèle dont le service ne saurait pas expliquer les prédictions.",
        "3. Régénérer cette fiche et ses figures : `attrition model report` ; vérifier les "
        "métriques, la calibration et la section équité.",
        "4. Activer la version : `attrition model activate VERSION`, qui applique la règle "
        "d'acceptation ci-dessous.",
        "",
        "**Règle d'acceptation** (appliquée par `attrition model activate`). "
        + acceptance.RULE_TEXT,
        "",
    ]
    text = "\n".join(lines)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return text
