"""Parsing and validation of the extracts: each hand-written bad row gets its exact error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from attrition.data.extracts import read_extracts, resolve_data_dir, verify_checksums
from attrition.errors import DataFileError

FILES = ("extrait_sirh.csv", "extrait_eval.csv", "extrait_sondage.csv")


@pytest.fixture
def copy(technova_dir: Path, tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copy(technova_dir / name, tmp_path / name)
    return tmp_path


def edit(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_real_extracts_are_valid(technova_dir: Path) -> None:
    extracts = read_extracts(technova_dir)
    assert len(extracts) == 1470
    assert sum(s["a_quitte_l_entreprise"] for s in extracts.surveys) == 237
    assert extracts.reviews[0]["augmentation_salaire_precedente"] == 11.0
    assert verify_checksums(technova_dir) is True


@pytest.mark.parametrize(
    ("file", "line", "old", "new", "message"),
    [
        (
            "extrait_sirh.csv",
            12,
            ",",
            "abc,",
            "extrait_sirh.csv, ligne 12, colonne « id_employee » : « 14abc » n'est pas un entier",
        ),
        (
            "extrait_sirh.csv",
            2,
            "1,41,F",
            "1,41,X",
            "extrait_sirh.csv, ligne 2, colonne « genre » : « X » n'est pas une valeur autorisée (F, M)",
        ),
        (
            "extrait_sirh.csv",
            2,
            "1,41,F",
            "1,abc,F",
            "extrait_sirh.csv, ligne 2, colonne « age » : « abc » n'est pas un entier",
        ),
        (
            "extrait_sirh.csv",
            2,
            "1,41,F",
            "1,99,F",
            "extrait_sirh.csv, ligne 2, colonne « age » : 99 hors du domaine [16, 70]",
        ),
        (
            "extrait_eval.csv",
            2,
            "Oui,11 %",
            "Peut-être,11 %",
            "extrait_eval.csv, ligne 2, colonne « heure_supplementaires » : « Peut-être » n'est pas Oui ou Non",
        ),
        (
            "extrait_eval.csv",
            2,
            "11 %",
            "onze %",
            "extrait_eval.csv, ligne 2, colonne « augementation_salaire_precedente » : « onze % » n'est pas un pourcentage",
        ),
        (
            "extrait_eval.csv",
            2,
            "E_1",
            "X_1",
            "extrait_eval.csv, ligne 2, colonne « eval_number » : « X_1 » ne suit pas le format",
        ),
        (
            "extrait_sondage.csv",
            2,
            "Oui,0",
            "Oui,",
            "extrait_sondage.csv, ligne 2, colonne « nombre_participation_pee » : valeur manquante",
        ),
    ],
)
def test_bad_value_is_located(
    copy: Path, file: str, line: int, old: str, new: str, message: str
) -> None:
    edit(copy / file, line, old, new)
    (copy / "SHA256SUMS").unlink(missing_ok=True)
    with pytest.raises(DataFileError) as info:
        read_extracts(copy)
    assert str(info.value).startswith(message)


def test_missing_column(copy: Path) -> None:
    edit(copy / "extrait_sirh.csv", 1, ",genre", "")
    with pytest.raises(DataFileError, match="ligne 1, colonne « genre » : colonne manquante"):
        read_extracts(copy)


def test_employee_missing_from_one_extract(copy: Path) -> None:
    path = copy / "extrait_sondage.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(
        DataFileError,
        match="extrait_sirh.csv, ligne 1471, colonne « id_employee » : employé 2068 absent de extrait_sondage.csv",
    ):
        read_extracts(copy)


def test_incoherent_row(copy: Path) -> None:
    edit(copy / "extrait_sirh.csv", 2, "8,80,8,6,4", "8,80,8,6,7")
    with pytest.raises(DataFileError, match="annees_dans_le_poste_actuel \\(7\\) dépasse"):
        read_extracts(copy)


def test_checksum_mismatch(copy: Path, technova_dir: Path) -> None:
    shutil.copy(technova_dir / "SHA256SUMS", copy / "SHA256SUMS")
    edit(copy / "extrait_sirh.csv", 2, "5993", "5994")
    with pytest.raises(DataFileError, match="extrait_sirh.csv : somme de contrôle SHA-256"):
        read_extracts(copy)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="fichier introuvable"):
        read_extracts(tmp_path)


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ATTRITION_DATA_DIR", raising=False)
    assert resolve_data_dir(tmp_path / "a", tmp_path / "b", tmp_path / "c") == tmp_path / "a"
    assert resolve_data_dir(None, tmp_path / "b", tmp_path / "c") == tmp_path / "b"
    monkeypatch.setenv("ATTRITION_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None, None, tmp_path / "c") == tmp_path / "env"
    monkeypatch.delenv("ATTRITION_DATA_DIR")
    assert resolve_data_dir(None, None, tmp_path / "c") == tmp_path / "c"
