"""Recording what actually happened to employees: one fact per row, never edited.

Used by the API (``POST /v1/employees/{id}/issue``) and the CLI (one outcome, or a CSV file:
an outcome list, or a newer SIRH extract whose employees are present on its extraction date).
A fact already recorded (same employee, status and date) is not duplicated: recording it again
says so. The employee must be known: in the dataset or in a past prediction.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection

from attrition.errors import FieldError, NotFoundError, ValidationError

STATUSES: Final = ("parti", "present")
SOURCES: Final = ("api", "cli", "import")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recorded fact about an employee."""

    id_employee: int
    statut: str
    date_constat: date
    source: str
    enregistre_par: str
    enregistre_le: datetime
    deja_enregistre: bool = False


def check_outcome(statut: str, date_constat: date, today: date | None = None) -> None:
    """Refuse an unknown status or a date in the future, naming the field."""
    if statut not in STATUSES:
        raise ValidationError(
            f"Statut « {statut} » inconnu : « parti » ou « present ».",
            errors=[FieldError("statut", "valeurs acceptées : parti, present")],
        )
    if date_constat > (today or datetime.now(UTC).date()):
        raise ValidationError(
            f"Date {date_constat.isoformat()} dans le futur : on n'enregistre que ce qui "
            "s'est produit.",
            errors=[FieldError("date", "date dans le futur")],
        )


async def record_outcome(
    conn: AsyncConnection[Any],
    id_employee: int,
    statut: str,
    date_constat: date,
    *,
    source: str,
    recorded_by: str,
) -> Outcome:
    """Record one outcome in the caller's transaction; an identical fact is not duplicated.

    Raises
    ------
    ValidationError
        If the status or the date is invalid.
    NotFoundError
        If the employee is neither in the dataset nor in a past prediction.
    """
    check_outcome(statut, date_constat)
    if source not in SOURCES:  # pragma: no cover - callers pass constants
        raise ValueError(source)
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM employees WHERE id_employee = %s) "
        "OR EXISTS (SELECT 1 FROM prediction_inputs WHERE id_employee = %s)",
        (id_employee, id_employee),
    )
    known = await cur.fetchone()
    if not (known and known[0]):
        raise NotFoundError(
            f"Employé {id_employee} inconnu : ni dossier enregistré ni prédiction à son nom."
        )
    cur = await conn.execute(
        "INSERT INTO employee_outcomes (id_employee, statut, date_constat, source, recorded_by) "
        "VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (id_employee, statut, date_constat) DO NOTHING RETURNING recorded_at",
        (id_employee, statut, date_constat, source, recorded_by[:100]),
    )
    inserted = await cur.fetchone()
    if inserted is not None:
        return Outcome(id_employee, statut, date_constat, source, recorded_by, inserted[0])
    cur = await conn.execute(
        "SELECT source, recorded_by, recorded_at FROM employee_outcomes "
        "WHERE id_employee = %s AND statut = %s AND date_constat = %s",
        (id_employee, statut, date_constat),
    )
    row = await cur.fetchone()
    assert row is not None  # the conflicting row exists: the table is append-only
    return Outcome(id_employee, statut, date_constat, row[0], row[1], row[2], True)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What :func:`import_outcomes` recorded."""

    lus: int
    enregistres: int
    deja_enregistres: int
    absents_de_l_extrait: list[int]


def read_outcome_file(path: Path, extraction_date: date | None) -> list[tuple[int, str, date]]:
    """The ``(id_employee, statut, date)`` facts of a CSV file.

    Two layouts: an outcome list (``id_employee,statut,date``), or a SIRH extract
    (``id_employee`` and the other SIRH columns): each employee listed is present on
    ``extraction_date``, and a ``date_depart`` column, when filled, records a departure.

    Raises
    ------
    ValidationError
        On a missing column, a bad line (its number is given) or a SIRH extract without
        ``extraction_date``.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        if "id_employee" not in columns:
            raise ValidationError(f"{path.name} : colonne « id_employee » absente.")
        outcome_list = {"statut", "date"} <= columns
        if not outcome_list and extraction_date is None:
            raise ValidationError(
                f"{path.name} n'a pas les colonnes « statut » et « date » : pour un extrait "
                "SIRH, donnez sa date d'extraction (--date-extraction AAAA-MM-JJ)."
            )
        facts: list[tuple[int, str, date]] = []
        for line, row in enumerate(reader, start=2):
            try:
                employee = int(row["id_employee"])
                if outcome_list:
                    facts.append((employee, row["statut"].strip(), date.fromisoformat(row["date"])))
                    continue
                left = (row.get("date_depart") or "").strip()
                assert extraction_date is not None
                facts.append(
                    (employee, "parti", date.fromisoformat(left))
                    if left
                    else (employee, "present", extraction_date)
                )
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"{path.name}, ligne {line} : {exc}.") from exc
    return facts


async def import_outcomes(
    conn: AsyncConnection[Any],
    facts: Iterable[tuple[int, str, date]],
    *,
    recorded_by: str,
    sirh_extract: bool,
) -> ImportSummary:
    """Record every fact in one transaction (all or nothing: a bad line records nothing).

    For a SIRH extract, the identified employees of past predictions who are missing from it
    are listed (``absents_de_l_extrait``) but not recorded as departures: their date is unknown.
    """
    facts = list(facts)
    recorded = already = 0
    async with conn.transaction():
        for employee, statut, when in facts:
            outcome = await record_outcome(
                conn, employee, statut, when, source="import", recorded_by=recorded_by
            )
            already += outcome.deja_enregistre
            recorded += not outcome.deja_enregistre
    missing: list[int] = []
    if sirh_extract:
        listed = sorted({employee for employee, _, _ in facts})
        cur = await conn.execute(
            "SELECT DISTINCT id_employee FROM prediction_inputs "
            "WHERE id_employee IS NOT NULL AND NOT (id_employee = ANY(%s)) "
            "AND NOT EXISTS (SELECT 1 FROM employee_outcomes o "
            "WHERE o.id_employee = prediction_inputs.id_employee AND o.statut = 'parti') "
            "ORDER BY id_employee",
            (listed,),
        )
        missing = [row[0] for row in await cur.fetchall()]
    return ImportSummary(len(facts), recorded, already, missing)
