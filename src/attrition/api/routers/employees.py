"""Stored employees (the dataset as loaded in PostgreSQL)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from attrition.api.deps import Lecteur, PoolDep, Rh
from attrition.api.responses import ERRORS, FastJSONResponse
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import (
    EmployeePage,
    EmployeeRecord,
    OutcomeRequest,
    OutcomeResponse,
    Problem,
)
from attrition.services import records
from attrition.services.outcomes import record_outcome

router = APIRouter(prefix="/v1/employees", tags=["employés"], route_class=FastJSONRoute)


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
    after = records.decode_cursor(curseur)
    async with pool.connection() as conn:
        rows, cursor = await records.list_employees(conn, after=after, limit=limite)
    return FastJSONResponse({"employes": rows, "curseur_suivant": cursor})


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
    async with pool.connection() as conn:
        return FastJSONResponse(await records.read_employee(conn, id_employee))


@router.post(
    "/{id_employee}/issue",
    response_model=OutcomeResponse,
    status_code=201,
    responses={
        **ERRORS,
        200: {"model": OutcomeResponse, "description": "Constat déjà enregistré à l'identique."},
        404: {"model": Problem, "description": "Employé inconnu."},
        422: {"model": Problem, "description": "Statut inconnu ou date dans le futur."},
    },
    summary="Enregistrer ce qui est arrivé à un employé",
)
async def create_outcome(
    id_employee: Annotated[int, Path(ge=1, le=2_147_483_647)],
    body: OutcomeRequest,
    client: Rh,
    pool: PoolDep,
) -> Any:
    """Rôles : `rh`, `admin`.

    Parti à une date, ou encore présent à une date : ces constats (jamais modifiés, une
    correction est un nouveau constat) alimentent le rapport de performance réalisée
    (`GET /v1/monitoring/performance`). L'employé doit avoir un dossier ou une prédiction.
    """
    async with pool.connection() as conn, conn.transaction():
        outcome = await record_outcome(
            conn,
            id_employee,
            body.statut,
            body.date,
            source="api",
            recorded_by=f"clé {client.key_id} ({client.name})",
        )
    return FastJSONResponse(
        {
            "id_employee": outcome.id_employee,
            "statut": outcome.statut,
            "date": outcome.date_constat.isoformat(),
            "source": outcome.source,
            "enregistre_par": outcome.enregistre_par,
            "enregistre_le": outcome.enregistre_le.isoformat(),
            "deja_enregistre": outcome.deja_enregistre,
        },
        status_code=200 if outcome.deja_enregistre else 201,
    )
