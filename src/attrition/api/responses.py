"""Responses of the routes: the orjson JSON response, and the documented error answers.

``ERRORS`` and ``WRITE_ERRORS`` are what the OpenAPI document says each route may refuse
with; every router takes them from here.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from attrition.api.schemas import Problem


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        if type(content) is bytes:  # already JSON (services.predictions.SingleBody)
            return content
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Clé API manquante, invalide, révoquée ou expirée."},
    403: {"model": Problem, "description": "Rôle insuffisant."},
    429: {
        "model": Problem,
        "description": "Trop de requêtes, ou quota de prédictions atteint (voir Retry-After "
        "et les en-têtes RateLimit-*).",
    },
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": Problem, "description": "Employé inconnu."},
    409: {"model": Problem, "description": "Même clé d'idempotence en cours de traitement."},
    413: {"model": Problem, "description": "Corps de requête trop volumineux."},
    415: {"model": Problem, "description": "Le corps doit être du JSON."},
    422: {"model": Problem, "description": "Entrée invalide : champ et raison donnés."},
    503: {
        "model": Problem,
        "description": "Base ou modèle indisponible : rien n'a été enregistré.",
    },
}
