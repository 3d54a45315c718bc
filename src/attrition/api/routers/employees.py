"""Stored employees (the dataset as loaded in PostgreSQL)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from psycopg.rows import dict_row

from attrition.api.deps import Lecteur, PoolDep
from attrition.api.responses import FastJSONResponse
from attrition.api.routers.predictions import ERRORS
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import EmployeePage, EmployeeRecord, Problem
from attrition.db import audit
from attrition.errors import FieldError, NotFoundError, ValidationError

router = APIRouter(prefix="/v1/employees", tags=["employés"], route_class=FastJSONRoute)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["augmentation_salaire_precedente"] = float(out["augmentation_salaire_precedente"])
    return out


@router.get(
    "",
    response_model=EmployeePage,
    responses={**ERRORS, 422: {"model": Problem, "description": "Curseur invalide."}},
    summary="Lister les employés enregistrés",
)
async def list_employees(
    client: Lecteur,
    pool: PoolDep,
    limite: Annotated[int, Query(ge=1, le=200, description="Taille de page (≤ 200).")] = 50,
    curseur: Annotated[
        str | None,
        Query(
            max_length=200, description="Curseur de page (`curseur_suivant` de la page d'avant)."
        ),
    ] = None,
) -> Any:
    """Rôles : tous. Les dossiers par identifiant croissant ; pagination par `curseur`."""
    after = 0
    if curseur is not None:
        try:
            after = audit.decode_cursor(curseur)
        except (ValueError, KeyError, TypeError):
            raise ValidationError(
                "Curseur invalide.", errors=[FieldError("curseur", "curseur invalide ou altéré")]
            ) from None
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM employee_features WHERE id_employee > %s ORDER BY id_employee LIMIT %s",
            (min(after, 2_147_483_647), limite + 1),
        )
        rows = await cur.fetchall()
    more = len(rows) > limite
    rows = rows[:limite]
    return FastJSONResponse(
        {
            "employes": [_row(r) for r in rows],
            "curseur_suivant": audit.encode_cursor(rows[-1]["id_employee"]) if more else None,
        }
    )


@router.get(
    "/{id_employee}",
    response_model=EmployeeRecord,
    responses={**ERRORS, 404: {"model": Problem, "description": "Employé inconnu."}},
    summary="Lire le dossier d'un employé",
)
async def read_employee(
    id_employee: Annotated[int, Path(ge=1, le=2_147_483_647)], client: Lecteur, pool: PoolDep
) -> Any:
    """Rôles : tous. Le dossier enregistré (les trois extraits joints)."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM employee_features WHERE id_employee = %s", (id_employee,))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"Employé {id_employee} inconnu : aucun dossier enregistré.")
    return FastJSONResponse(_row(row))
