"""Fixtures of the model tests: the employee frame, built from the CSV extracts.

In production the model reads the PostgreSQL view ``employee_features``; these tests need no
database, so :func:`load_frame_from_csv` rebuilds exactly the frame that view yields (clean
names, Python types, one row per employee sorted by ``id_employee``) from the three extracts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from attrition.data import vocabulary as voc
from attrition.model.final import TrainedModel, fit_final


def _yes_no(series: pd.Series, yes: str, no: str | None = None) -> pd.Series:
    """Map a two-valued text column to bool, failing loudly on anything else."""
    allowed = {yes} if no is None else {yes, no}
    unknown = set(series.unique()) - allowed
    if unknown:
        raise ValueError(f"unexpected values {sorted(unknown)} in {series.name}")
    return series == yes


def load_frame_from_csv(data_dir: Path) -> pd.DataFrame:
    """Build the frame the ``employee_features`` view yields, from the three CSV extracts.

    Parameters
    ----------
    data_dir:
        Folder holding ``extrait_sirh.csv``, ``extrait_eval.csv`` and ``extrait_sondage.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per employee sorted by ``id_employee``: ``id_employee``, the features of
        :data:`vocabulary.FEATURE_NAMES`, the constant columns and the boolean target.
    """
    files = voc.EXTRACT_FILES
    sirh = pd.read_csv(data_dir / files["sirh"], encoding="utf-8")
    evals = pd.read_csv(data_dir / files["eval"], encoding="utf-8")
    # The survey code is zero-padded to varying widths: read as text so "000001" stays exact.
    sondage = pd.read_csv(
        data_dir / files["sondage"], encoding="utf-8", dtype={"code_sondage": str}
    )

    sirh = sirh[list(voc.SIRH_COLUMNS)].rename(columns=voc.SIRH_COLUMNS)
    evals = evals[list(voc.EVAL_COLUMNS)].rename(columns=voc.EVAL_COLUMNS)
    sondage = sondage[list(voc.SONDAGE_COLUMNS)].rename(columns=voc.SONDAGE_COLUMNS)

    evals["id_employee"] = evals.pop("eval_number").str.removeprefix("E_").astype(int)
    sondage["id_employee"] = sondage.pop("code_sondage").astype(int)
    evals["heures_supplementaires"] = _yes_no(evals["heures_supplementaires"], "Oui", "Non")
    evals["augmentation_salaire_precedente"] = (
        evals["augmentation_salaire_precedente"].str.removesuffix("%").str.strip().astype(float)
    )
    sondage[voc.TARGET] = _yes_no(sondage[voc.TARGET], "Oui", "Non")
    sondage["ayant_enfants"] = _yes_no(sondage["ayant_enfants"], "Y")

    frame = sirh.merge(evals, on="id_employee", how="inner", validate="one_to_one").merge(
        sondage, on="id_employee", how="inner", validate="one_to_one"
    )
    if not len(frame) == len(sirh) == len(evals) == len(sondage):
        raise ValueError("the three extracts do not hold the same employees")

    for field in voc.FEATURES:
        if field.kind == "int":
            frame[field.name] = frame[field.name].astype("int64")
        elif field.kind == "float":
            frame[field.name] = frame[field.name].astype("float64")
        elif field.kind == "bool":
            frame[field.name] = frame[field.name].astype(bool)
        else:
            unknown = set(frame[field.name].unique()) - set(field.categories)
            if unknown:
                raise ValueError(f"unknown categories {sorted(unknown)} in {field.name}")
            frame[field.name] = frame[field.name].astype(object)

    columns = ["id_employee", *voc.FEATURE_NAMES, *voc.CONSTANT_COLUMNS, voc.TARGET]
    return frame[columns].sort_values("id_employee").reset_index(drop=True)


@pytest.fixture(scope="session")
def employee_frame(technova_dir: Path) -> pd.DataFrame:
    """The 1,470 employees, as the ``employee_features`` view yields them."""
    return load_frame_from_csv(technova_dir)


@pytest.fixture(scope="session")
def trained_model(employee_frame: pd.DataFrame) -> TrainedModel:
    """The logistic regression recipe fitted on all employees (seed 7), without CV report."""
    return fit_final(employee_frame, "regression_logistique", seed=7)
