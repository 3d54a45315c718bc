"""Training: threshold criterion, reproducible evaluation, selection, final fit, the bar."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from attrition import wording
from attrition.errors import ValidationError
from attrition.model import calibration as cal
from attrition.model import features as feat
from attrition.model.candidates import CANDIDATES, make_pipeline
from attrition.model.final import (
    TrainedModel,
    expected_calibration_error,
    fit_final,
    served_risk_bands,
)
from attrition.model.thresholds import best_threshold
from attrition.model.training import (
    METRICS,
    CandidateResult,
    EvaluationReport,
    calibration_check,
    design,
    evaluate,
    select_best,
)


def test_best_threshold_maximises_f2_by_hand() -> None:
    # Thresholds 0.1 / 0.35 / 0.4 / 0.8 give F2 = 0.833 / 0.909 / 0.5 / 0.556.
    target = np.array([0, 0, 1, 1])
    probability = np.array([0.1, 0.4, 0.35, 0.8])
    assert best_threshold(target, probability) == 0.35


def test_best_threshold_with_beta_one_prefers_precision_more() -> None:
    # F1 at 0.35 = 0.8, at 0.8 = 0.667, at 0.1 = 0.667: still 0.35; with beta 0.5 it is 0.8.
    target = np.array([0, 0, 1, 1])
    probability = np.array([0.1, 0.4, 0.35, 0.8])
    assert best_threshold(target, probability, beta=1.0) == 0.35
    assert best_threshold(target, probability, beta=0.5) == 0.8


def test_make_pipeline_refuses_unknown_candidate() -> None:
    with pytest.raises(ValidationError, match="inconnu"):
        make_pipeline("svm", seed=7)


def test_hyper_parameters_are_json() -> None:
    for candidate in CANDIDATES.values():
        json.dumps(candidate.hyper_parameters)


def test_evaluate_is_reproducible(employee_frame: pd.DataFrame) -> None:
    messages: list[str] = []
    first = evaluate(
        employee_frame,
        seed=3,
        repeats=1,
        candidates=["regression_logistique"],
        progress=messages.append,
    )
    second = evaluate(employee_frame, seed=3, repeats=1, candidates=["regression_logistique"])
    assert first.to_dict() == second.to_dict()
    np.testing.assert_array_equal(
        first.candidates["regression_logistique"].oof_probabilities,
        second.candidates["regression_logistique"].oof_probabilities,
    )
    assert len(messages) == 5 and messages[-1].endswith("pli 5/5")

    result = first.candidates["regression_logistique"]
    assert set(result.folds) == set(METRICS)
    assert all(len(values) == 5 for values in result.folds.values())
    assert not np.isnan(result.oof_probabilities).any()
    assert result.confusion.sum() == pytest.approx(1470)
    assert result.confusion[1].sum() == pytest.approx(237)
    json.dumps(first.to_dict())

    # Recalibration is decided inside the evaluation, by the rule fixed in advance.
    decision = result.calibration
    assert decision["n_folds"] == 5 and decision["rule"] == cal.RULE
    assert decision["kept"] == (decision["gain"] > decision["standard_error"])
    assert np.mean(result.folds["brier"]) == pytest.approx(
        decision["brier_calibrated"] if decision["kept"] else decision["brier_raw"]
    )
    # Nested operating figures: each employee flagged at its own outer fold's threshold.
    assert result.flagged is not None and result.flagged.shape == (1, 1470)
    honest = result.honest["figures"]
    flags, target = result.flagged[0], employee_frame["a_quitte_l_entreprise"].to_numpy()
    assert honest["precision"]["value"] == pytest.approx(target[flags].mean())
    assert honest["recall"]["value"] == pytest.approx(flags[target].mean())
    for name, interval in honest.items():
        if name != "ece":
            assert interval["low"] <= interval["value"] <= interval["high"], name
    for attribute in ("genre", "age"):
        for row in result.honest["fairness"][attribute]:
            assert row["recall"]["low"] <= row["recall"]["value"] <= row["recall"]["high"]
    assert 0.5 < result.honest["calibration"]["slope"] < 2


def test_evaluate_refuses_unknown_candidate(employee_frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError):
        evaluate(employee_frame, seed=7, repeats=1, candidates=["svm"])


def _result(name: str, pr_auc: float, roc_auc: float) -> CandidateResult:
    folds = {metric: [0.5, 0.5] for metric in METRICS}
    folds["pr_auc"] = [pr_auc, pr_auc]
    folds["roc_auc"] = [roc_auc, roc_auc]
    return CandidateResult(name, name, {}, folds, np.zeros((1, 2)), np.zeros((2, 2)))


def _report(*results: CandidateResult) -> EvaluationReport:
    return EvaluationReport(7, 1, 2, 2, 2, 1, "", {result.name: result for result in results})


def test_select_best_prefers_pr_auc() -> None:
    report = _report(
        _result("regression_logistique", 0.60, 0.90), _result("gradient_boosting", 0.70, 0.80)
    )
    assert select_best(report) == "gradient_boosting"


def test_select_best_breaks_ties_with_roc_auc_then_simplicity() -> None:
    roc_tie = _report(
        _result("regression_logistique", 0.7001, 0.80), _result("foret_aleatoire", 0.7003, 0.85)
    )
    assert select_best(roc_tie) == "foret_aleatoire"
    full_tie = _report(
        _result("foret_aleatoire", 0.7003, 0.8501), _result("regression_logistique", 0.7001, 0.85)
    )
    assert select_best(full_tie) == "regression_logistique"


def test_select_best_refuses_empty_report() -> None:
    with pytest.raises(ValidationError):
        select_best(_report())


def test_calibration_check_on_calibrated_probabilities() -> None:
    rng = np.random.default_rng(0)
    probability = rng.uniform(0.01, 0.6, 20000)
    target = (rng.uniform(size=probability.size) < probability).astype(np.int64)
    check = calibration_check(target, probability)
    assert check["well_calibrated"]
    assert check["slope"] == pytest.approx(1.0, abs=0.1)
    assert check["mean_predicted"] == pytest.approx(check["observed_rate"], abs=0.01)


def test_calibration_check_flags_over_confidence() -> None:
    rng = np.random.default_rng(0)
    probability = rng.uniform(0.01, 0.6, 20000)
    target = (rng.uniform(size=probability.size) < probability).astype(np.int64)
    logit = np.log(probability / (1 - probability))
    over_confident = 1 / (1 + np.exp(-2 * logit))
    assert not calibration_check(target, over_confident)["well_calibrated"]


def test_final_logistic_regression_is_recalibrated_by_a_map_not_a_wrapper(
    trained_model: TrainedModel, employee_frame: pd.DataFrame
) -> None:
    # The pipeline stays a bare logistic regression (compiled to a dot product); the
    # recalibration is a separate, strictly increasing map stored with the version.
    assert isinstance(trained_model.pipeline.named_steps["modele"], LogisticRegression)
    assert trained_model.pipeline.named_steps["modele"].class_weight is None
    assert trained_model.calibrated and trained_model.calibration is not None
    checks = trained_model.metrics["calibration"]
    assert checks["method"] == cal.METHOD
    assert checks["brier"] < checks["raw"]["brier"]
    assert 0.8 <= checks["slope"] <= 1.25
    assert checks["ece"] == pytest.approx(
        expected_calibration_error(trained_model.target, trained_model.oof_probabilities)
    )
    assert 0.05 < trained_model.threshold < 0.6
    assert trained_model.features == list(feat.MODEL_FEATURES)
    assert trained_model.oof_probabilities.shape == (1470,)
    assert trained_model.metrics["oof"]["roc_auc"] > 0.85
    metadata = trained_model.metadata()
    json.dumps(metadata)
    assert metadata["threshold"] == trained_model.threshold
    assert metadata["calibration_map"] == trained_model.calibration.to_state()
    assert "F2" in metadata["threshold_criterion"]
    # Same order as the raw scores: the ranking (and so ROC-AUC) is the linear model's.
    inputs, _ = design(employee_frame)
    raw = trained_model.pipeline.predict_proba(inputs)[:, 1]
    served = trained_model.predict_proba(inputs)
    assert (np.argsort(raw, kind="stable") == np.argsort(served, kind="stable")).all()


def test_fit_final_follows_the_evaluation_decision(employee_frame: pd.DataFrame) -> None:
    report = _report(_result("regression_logistique", 0.7, 0.86))
    report.candidates["regression_logistique"].calibration.update(
        {"method": cal.NONE, "kept": False}
    )
    trained = fit_final(employee_frame, "regression_logistique", 7, report=report)
    assert trained.calibration is None
    assert trained.metrics["calibration"]["method"] == cal.NONE
    assert trained.metrics["calibration"]["decision"]["kept"] is False
    with pytest.raises(ValidationError, match="recalibration"):
        fit_final(employee_frame, "regression_logistique", 7, calibration="platt")


def test_selected_recipe_reaches_the_bar(employee_frame: pd.DataFrame) -> None:
    """All candidates, seed 7, 2 repeats: the selected model clears ROC-AUC 0.855, PR-AUC 0.66."""
    report = evaluate(employee_frame, seed=7, repeats=2)
    best = select_best(report)
    summary = report.candidates[best].summary()
    assert best == "regression_logistique"
    assert summary["roc_auc"]["mean"] >= 0.855
    assert summary["pr_auc"]["mean"] >= 0.66
    for name, result in report.candidates.items():
        if name != best:
            assert result.summary()["pr_auc"]["mean"] <= summary["pr_auc"]["mean"]


def test_risk_bands_come_from_the_nested_outer_folds_of_the_served_recipe() -> None:
    """Two repeats of nested out-of-fold probabilities (served scale), threshold 0.5."""
    target = np.array([1, 0, 1, 0])
    result = dataclasses.replace(
        _result("regression_logistique", 0.7, 0.86),
        oof_probabilities=np.array([[0.9, 0.6, 0.3, 0.1], [0.8, 0.2, 0.6, 0.1]]),
    )
    cross_fitted = np.array([0.01, 0.01, 0.01, 0.01])  # would put everyone low
    bands = served_risk_bands(_report(result), "regression_logistique", target, cross_fitted, 0.5)
    # Flagged: employees 1 and 2 (one leaver), then 1 and 3 (two leavers): 2 and 1.5 -> 2.
    assert bands["eleve"] == {"n": 2, "partis": 2}
    per_repeat = [wording.risk_bands(target, row, 0.5) for row in result.oof_probabilities]
    for level in ("eleve", "moyen", "faible"):
        mean_n = (per_repeat[0][level]["n"] + per_repeat[1][level]["n"]) / 2
        assert bands[level]["n"] == round(mean_n)
    assert bands != wording.risk_bands(target, cross_fitted, 0.5)


def test_risk_bands_fall_back_to_cross_fitted_probabilities_without_a_matching_report() -> None:
    target = np.array([1, 0, 1, 0])
    cross_fitted = np.array([0.9, 0.1, 0.2, 0.05])
    other_frame = _report(_result("regression_logistique", 0.7, 0.86))  # 2 employees, not 4
    expected = wording.risk_bands(target, cross_fitted, 0.5)
    assert served_risk_bands(other_frame, "regression_logistique", target, cross_fitted, 0.5) == (
        expected
    )
    assert served_risk_bands(None, "regression_logistique", target, cross_fitted, 0.5) == expected


def test_trained_model_stores_risk_bands_of_its_served_out_of_fold_probabilities(
    trained_model: TrainedModel,
) -> None:
    bands = trained_model.metrics["oof"]["risk_bands"]
    assert sum(band["n"] for band in bands.values()) == len(trained_model.target)
    assert sum(band["partis"] for band in bands.values()) == int(trained_model.target.sum())
    assert bands == wording.risk_bands(
        trained_model.target, trained_model.oof_probabilities, trained_model.threshold
    )
    assert trained_model.calibrated  # the served scale is the recalibrated one
