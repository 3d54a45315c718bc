"""`attrition predict --fichier`: a CSV without the fields the model does not use is read."""

from __future__ import annotations

import csv
from pathlib import Path

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli.offline import read_employee_file
from attrition.data.vocabulary import NOT_MODEL_INPUTS


def test_csv_without_unused_columns_is_read(tmp_path: Path) -> None:
    row = {k: v for k, v in EXAMPLE_EMPLOYEE.items() if k not in NOT_MODEL_INPUTS}
    path = tmp_path / "employes.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    (request,) = read_employee_file(path)
    features = request.features()
    assert features["age"] == 41
    assert not set(NOT_MODEL_INPUTS) & set(features)
