"""Reading and validating the three TechNova extracts, row by row, with precise errors.

Each extract is parsed with the csv module (so that line numbers are exact), every value is
converted and checked against :mod:`attrition.data.vocabulary`, and the three files are
joined on the employee id. The first problem raises :class:`~attrition.errors.DataFileError`
naming the file, the line and the column: the data owner can fix the file without guessing.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrition.data import vocabulary as v
from attrition.errors import DataFileError

Parsed = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Extracts:
    """The three validated extracts, keyed by ``id_employee``, in id order."""

    employees: list[Parsed]
    reviews: list[Parsed]
    surveys: list[Parsed]

    def __len__(self) -> int:
        return len(self.employees)


def resolve_data_dir(explicit: Path | None, configured: Path | None, default: Path) -> Path:
    """``--data-dir`` first, then ``ATTRITION_DATA_DIR`` (settings), then ``data/raw``."""
    env = os.environ.get("ATTRITION_DATA_DIR")
    for candidate in (explicit, configured, Path(env) if env else None):
        if candidate is not None:
            return candidate
    return default


def missing_files(data_dir: Path) -> list[str]:
    return [name for name in v.EXTRACT_FILES.values() if not (data_dir / name).is_file()]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(data_dir: Path) -> bool:
    """Check the extracts against ``SHA256SUMS`` when the folder has one; True if checked."""
    sums = data_dir / "SHA256SUMS"
    if not sums.is_file():
        return False
    for raw in sums.read_text().splitlines():
        if not raw.strip():
            continue
        expected, name = raw.split(maxsplit=1)
        name = name.lstrip("*").strip()
        path = data_dir / name
        if path.is_file() and sha256_file(path) != expected:
            raise DataFileError(
                name, None, None, "somme de contrôle SHA-256 différente de celle de SHA256SUMS"
            )
    return True


# ---- value parsers: each raises ValueError with a French reason --------------------------


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"« {raw} » n'est pas un entier") from None


def _oui_non(raw: str) -> bool:
    value = raw.strip()
    if value not in {"Oui", "Non"}:
        raise ValueError(f"« {raw} » n'est pas Oui ou Non")
    return value == "Oui"


def _y_n(raw: str) -> bool:
    value = raw.strip()
    if value not in {"Y", "N"}:
        raise ValueError(f"« {raw} » n'est pas Y ou N")
    return value == "Y"


def _percent(raw: str) -> float:
    text = raw.strip().removesuffix("%").strip().replace(",", ".")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"« {raw} » n'est pas un pourcentage (ex. « 11 % »)") from None


def _eval_number(raw: str) -> int:
    value = raw.strip()
    if not value.startswith("E_"):
        raise ValueError(f"« {raw} » ne suit pas le format E_<id_employee>")
    return _int(value[2:])


def _code_sondage(raw: str) -> str:
    # Zero-padded to an inconsistent width: kept as text, joined as an integer.
    value = raw.strip()
    if not value.isdigit():
        raise ValueError(f"« {raw} » n'est pas un code numérique")
    return value


def _checked(name: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser with the vocabulary's domain check for feature ``name``."""
    field = v.FEATURES_BY_NAME.get(name)

    def parser(raw: str) -> Any:
        value = parse(raw)
        if field is None:
            return value
        if field.categories and value not in field.categories:
            allowed = ", ".join(field.categories)
            raise ValueError(f"« {raw} » n'est pas une valeur autorisée ({allowed})")
        if (
            field.low is not None
            and field.high is not None
            and not (field.low <= value <= field.high)
        ):
            raise ValueError(f"{value} hors du domaine [{field.low:g}, {field.high:g}]")
        return value

    return parser


def _category(raw: str) -> str:
    return raw.strip()


def _parser_for(clean: str) -> Callable[[str], Any]:
    special: dict[str, Callable[[str], Any]] = {
        "heures_supplementaires": _oui_non,
        "a_quitte_l_entreprise": _oui_non,
        "ayant_enfants": _y_n,
        "augmentation_salaire_precedente": _percent,
        "eval_number": _eval_number,
        "code_sondage": _code_sondage,
    }
    if clean in special:
        return _checked(clean, special[clean])
    field = v.FEATURES_BY_NAME.get(clean)
    if field is not None and field.kind == "category":
        return _checked(clean, _category)
    return _checked(clean, _int)


def read_extract(path: Path, columns: dict[str, str]) -> Iterator[tuple[int, Parsed]]:
    """Yield ``(line number, parsed row)`` for each data line, refusing the first bad value."""
    name = path.name
    try:
        fh = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataFileError(name, None, None, "fichier introuvable") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFileError(name, 1, None, "fichier vide (en-tête absent)") from None
        except UnicodeDecodeError:
            raise DataFileError(name, 1, None, "fichier illisible (UTF-8 attendu)") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        for expected in columns:
            if expected not in header:
                raise DataFileError(name, 1, expected, "colonne manquante dans l'en-tête")
        unknown = [h for h in header if h not in columns]
        if unknown:
            raise DataFileError(name, 1, unknown[0], "colonne inattendue dans l'en-tête")
        parsers = [(h, columns[h], _parser_for(columns[h])) for h in header]
        try:
            for index, values in enumerate(reader, start=2):
                if not values or all(not x.strip() for x in values):
                    continue
                if len(values) != len(header):
                    raise DataFileError(
                        name,
                        index,
                        None,
                        f"{len(values)} valeurs au lieu de {len(header)}",
                    )
                row: Parsed = {}
                for (source, clean, parse), raw in zip(parsers, values, strict=True):
                    if raw.strip() == "":
                        raise DataFileError(name, index, source, "valeur manquante")
                    try:
                        row[clean] = parse(raw)
                    except ValueError as exc:
                        raise DataFileError(name, index, source, str(exc)) from None
                yield index, row
        except UnicodeDecodeError:
            raise DataFileError(name, None, None, "fichier illisible (UTF-8 attendu)") from None


def _index(path: Path, columns: dict[str, str], key: str) -> dict[int, tuple[int, Parsed]]:
    out: dict[int, tuple[int, Parsed]] = {}
    source_key = next(s for s, c in columns.items() if c == key)
    for line, row in read_extract(path, columns):
        ident = int(row[key])
        if ident in out:
            raise DataFileError(
                path.name,
                line,
                source_key,
                f"identifiant {ident} en double (ligne {out[ident][0]})",
            )
        out[ident] = (line, row)
    return out


COHERENCE_RULES: tuple[tuple[str, str, str], ...] = (
    ("annees_dans_l_entreprise", "annees_experience_totale", "l'expérience totale"),
    ("annees_dans_le_poste_actuel", "annees_dans_l_entreprise", "l'ancienneté dans l'entreprise"),
    (
        "annees_depuis_la_derniere_promotion",
        "annees_dans_l_entreprise",
        "l'ancienneté dans l'entreprise",
    ),
    (
        "annees_sous_responsable_actuel",
        "annees_dans_l_entreprise",
        "l'ancienneté dans l'entreprise",
    ),
)


def coherence_errors(row: Parsed) -> list[tuple[str, str]]:
    """Cross-field rules that hold for every employee of the dataset: (field, French reason)."""
    errors = [
        (small, f"{small} ({row[small]}) dépasse {label} ({row[big]})")
        for small, big, label in COHERENCE_RULES
        if row[small] > row[big]
    ]
    if row["annees_experience_totale"] > row["age"] - 14:
        errors.append(
            (
                "annees_experience_totale",
                f"annees_experience_totale ({row['annees_experience_totale']}) dépasse "
                f"l'âge moins 14 ans ({row['age'] - 14})",
            )
        )
    return errors


def read_extracts(data_dir: Path) -> Extracts:
    """Read, validate and join the three extracts of ``data_dir``."""
    missing = missing_files(data_dir)
    if missing:
        raise DataFileError(missing[0], None, None, f"fichier introuvable dans {data_dir}")
    verify_checksums(data_dir)
    sirh_path = data_dir / v.EXTRACT_FILES["sirh"]
    eval_path = data_dir / v.EXTRACT_FILES["eval"]
    sondage_path = data_dir / v.EXTRACT_FILES["sondage"]
    sirh = _index(sirh_path, v.SIRH_COLUMNS, "id_employee")
    evals = _index(eval_path, v.EVAL_COLUMNS, "eval_number")
    surveys = _index(sondage_path, v.SONDAGE_COLUMNS, "code_sondage")

    for ident, (line, _) in evals.items():
        if ident not in sirh:
            raise DataFileError(
                eval_path.name, line, "eval_number", f"employé {ident} absent de {sirh_path.name}"
            )
    for ident, (line, _) in surveys.items():
        if ident not in sirh:
            raise DataFileError(
                sondage_path.name,
                line,
                "code_sondage",
                f"employé {ident} absent de {sirh_path.name}",
            )
    employees, reviews, answers = [], [], []
    for ident in sorted(sirh):
        line, emp = sirh[ident]
        if ident not in evals:
            raise DataFileError(
                sirh_path.name, line, "id_employee", f"employé {ident} absent de {eval_path.name}"
            )
        if ident not in surveys:
            raise DataFileError(
                sirh_path.name,
                line,
                "id_employee",
                f"employé {ident} absent de {sondage_path.name}",
            )
        review = dict(evals[ident][1])
        survey = dict(surveys[ident][1])
        merged = {**emp, **review, **survey}
        for field, reason in coherence_errors(merged):
            source = _source_of(field)
            raise DataFileError(
                source[0], _line_of(source[0], sirh, evals, surveys, ident), source[1], reason
            )
        review["eval_number"] = f"E_{ident}"
        review["id_employee"] = ident
        survey["id_employee"] = ident
        employees.append(emp)
        reviews.append(review)
        answers.append(survey)
    return Extracts(employees=employees, reviews=reviews, surveys=answers)


def _source_of(clean: str) -> tuple[str, str]:
    for key, mapping in (
        ("sirh", v.SIRH_COLUMNS),
        ("eval", v.EVAL_COLUMNS),
        ("sondage", v.SONDAGE_COLUMNS),
    ):
        for source, name in mapping.items():
            if name == clean:
                return v.EXTRACT_FILES[key], source
    raise KeyError(clean)  # pragma: no cover - every rule names a known column


def _line_of(
    file: str,
    sirh: dict[int, tuple[int, Parsed]],
    evals: dict[int, tuple[int, Parsed]],
    surveys: dict[int, tuple[int, Parsed]],
    ident: int,
) -> int:
    table = {v.EXTRACT_FILES["sirh"]: sirh, v.EXTRACT_FILES["eval"]: evals}.get(file, surveys)
    return table[ident][0]
