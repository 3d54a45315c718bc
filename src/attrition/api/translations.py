"""Pydantic validation errors in French, with the field path and, in a batch, the row.

No FastAPI here: the command line validates its CSV rows with the API's schema and reports
the errors with these same words, without loading the web framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: An empty body (nothing, or only blanks): not "a missing field", not "invalid JSON".
EMPTY_BODY = "corps de la requête vide : un objet JSON est attendu"


def _french(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "missing" and tuple(err.get("loc", ())) == ("body",):
        return EMPTY_BODY  # FastAPI's word for a request that came without any body
    if kind == "json_invalid" and ctx.get("error") == EMPTY_BODY:
        return EMPTY_BODY  # only blanks: api/routing.py says so before parsing
    if kind == "missing":
        return "champ obligatoire manquant"
    if kind == "extra_forbidden":
        return "champ inconnu : il ne fait pas partie du schéma"
    if kind in {"enum", "literal_error"}:
        expected = str(ctx.get("expected", "")).replace("' or '", "', '")
        return f"valeur non autorisée ; valeurs possibles : {expected}".strip()
    if kind == "greater_than_equal":
        return f"doit être supérieur ou égal à {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"doit être inférieur ou égal à {ctx.get('le')}"
    if kind == "greater_than":
        return f"doit être strictement supérieur à {ctx.get('gt')}"
    if kind == "less_than":
        return f"doit être strictement inférieur à {ctx.get('lt')}"
    if kind == "too_short":
        return f"doit contenir au moins {ctx.get('min_length')} élément(s)"
    if kind == "too_long":
        return f"doit contenir au plus {ctx.get('max_length')} élément(s)"
    if kind == "string_too_short":
        return f"doit contenir au moins {ctx.get('min_length')} caractère(s)"
    if kind == "string_too_long":
        return f"doit contenir au plus {ctx.get('max_length')} caractère(s)"
    if kind == "string_pattern_mismatch":
        return f"format invalide (motif attendu : {ctx.get('pattern')})"
    if kind == "json_invalid":
        return f"JSON invalide : {_json_error(str(ctx.get('error', '')))}"
    if kind in {"model_attributes_type", "dict_type", "model_type"}:
        return "doit être un objet JSON"
    if kind == "list_type":
        return "doit être une liste"
    if kind in {"string_type", "str_type"}:
        return "doit être une chaîne de caractères"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "doit être un nombre entier"
    if kind in {"float_type", "float_parsing"}:
        return "doit être un nombre"
    if kind in {"bool_type", "bool_parsing"}:
        return "doit être un booléen (true ou false)"
    if kind in {"datetime_parsing", "datetime_type", "datetime_from_date_parsing"}:
        return "doit être une date et heure ISO 8601 (ex. 2026-01-31T00:00:00Z)"
    if kind == "finite_number":
        return "doit être un nombre fini"
    if kind == "coherence":
        return str(err.get("msg", "valeur invalide"))
    if kind == "string_unicode":
        return "doit être du texte Unicode valide"
    return f"valeur invalide (règle « {kind} »)"


def translate(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors -> ``{"champ", "message", "ligne"?}`` with the path without ``body``."""
    out = []
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p not in ("body",)]
        row = None
        if len(loc) >= 2 and loc[0] == "employes" and isinstance(loc[1], int):
            row = loc[1]
            loc = loc[2:]
        ctx = err.get("ctx") or {}
        if err.get("type") == "coherence" and "champ" in ctx:
            loc = [*loc, ctx["champ"]]
        if err.get("type") == "json_invalid":
            loc = []  # FastAPI puts the character position there: the field is the body
        field = ".".join(str(p) for p in loc) or "corps"
        item: dict[str, Any] = {"champ": field, "message": _french(err)}
        if row is not None:
            item["ligne"] = row
        out.append(item)
    return out


#: Python's JSON decoder messages (json.JSONDecodeError.msg), in French.
_JSON_ERRORS = (
    ("Expecting value", "une valeur JSON est attendue au début (ou après « : », « , », « [ »)"),
    (
        "Expecting property name enclosed in double quotes",
        "nom de champ entre guillemets doubles attendu (pas de virgule avant « } »)",
    ),
    ("Expecting ',' delimiter", "virgule attendue entre deux éléments (ou « } » / « ] » manquant)"),
    ("Expecting ':' delimiter", "deux-points attendus après un nom de champ"),
    ("Unterminated string", "chaîne de caractères non terminée (guillemet fermant manquant)"),
    ("Extra data", "caractères en trop après le JSON"),
    ("Invalid control character", "caractère de contrôle interdit dans une chaîne"),
    (
        "Invalid \\escape",
        "séquence d'échappement invalide (« \\ » suivi d'un caractère non autorisé)",
    ),
)


def _json_error(message: str) -> str:
    for english, french in _JSON_ERRORS:
        if message.startswith(english):
            return french
    # Our own decoding errors are already French and lower-case (api/routing.py, TOO_DEEP);
    # the decoder's are capitalised English.
    if message[:1].islower():
        return message
    return "erreur de syntaxe"
