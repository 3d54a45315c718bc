"""Render the OpenAPI document as Markdown for the documentation site.

The "Référence de l'API" page shows every operation (roles, parameters, body, responses)
and every schema with its fields, generated from ``docs/openapi.json`` so it cannot drift
from the code: a test compares the committed page with this rendering.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START = "<!-- openapi:start -->"
END = "<!-- openapi:end -->"
METHODS = ("get", "post", "put", "patch", "delete")
#: FastAPI's default English response descriptions, in French.
FRENCH = {"Successful Response": "Réponse réussie", "Validation Error": "Entrée invalide"}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """A short human form of a JSON schema type."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        parts = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        return " ou ".join(parts) + (" (ou null)" if nullable else "")
    if "enum" in schema:
        return "une de : " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "objet")
    if kind == "array":
        return f"liste de {_type(schema.get('items', {}))}"
    if "const" in schema:
        return f"`{schema['const']}`"
    return f"`{kind}`"


def _bounds(schema: dict[str, Any]) -> str:
    out = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "longueur ≥"),
        ("maxLength", "longueur ≤"),
        ("minItems", "éléments ≥"),
        ("maxItems", "éléments ≤"),
    ):
        if key in schema:
            out.append(
                f"{label} {schema[key]:g}"
                if isinstance(schema[key], float)
                else f"{label} {schema[key]}"
            )
    for sub in schema.get("anyOf", []):
        inner = _bounds(sub)
        if inner:
            out.append(inner)
    return ", ".join(out)


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"#### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        lines += [
            "| Paramètre | Où | Obligatoire | Type | Contraintes |",
            "| --- | --- | --- | --- | --- |",
        ]
        for p in params:
            schema = p.get("schema", {})
            lines.append(
                f"| `{p['name']}` | {p['in']} | {'oui' if p.get('required') else 'non'} | "
                f"{_cell(_type(schema))} | {_cell(_bounds(schema)) or '-'} |"
            )
        lines.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines += [f"Corps (`{media}`) : {_type(content.get('schema', {}))}", ""]
    lines += ["| Statut | Description | Contenu |", "| --- | --- | --- |"]
    for status, response in op.get("responses", {}).items():
        contents = response.get("content", {})
        shown = "; ".join(
            f"`{media}` {_type(c.get('schema', {}))}" for media, c in contents.items()
        )
        description = _cell(response.get("description", ""))
        description = FRENCH.get(description, description)
        lines.append(f"| {status} | {description} | {shown or '-'} |")
    lines.append("")
    return lines


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    if "enum" in schema:
        lines += ["Valeurs : " + ", ".join(f"`{v}`" for v in schema["enum"]), ""]
        return lines
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += [
            "| Champ | Obligatoire | Type | Contraintes | Description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for field, spec in properties.items():
            lines.append(
                f"| `{field}` | {'oui' if field in required else 'non'} | {_cell(_type(spec))} | "
                f"{_cell(_bounds(spec)) or '-'} | {_cell(spec.get('description', '')) or '-'} |"
            )
        lines.append("")
    return lines


def render_markdown(spec: dict[str, Any]) -> str:
    """The whole reference: operations grouped by tag, then the schemas."""
    lines = [f"Version de l'API : **{spec['info']['version']}** (OpenAPI {spec['openapi']}).", ""]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["autres"])[0]
                by_tag.setdefault(tag, []).append((path, method, item[method]))
    lines += ["## Opérations", ""]
    for tag, operations in by_tag.items():
        lines += [f"### Groupe « {tag} »", ""]
        for path, method, op in operations:
            lines += _operation(path, method, op)
    lines += ["## Schémas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def update_markdown(page: Path, spec: dict[str, Any]) -> bool:
    """Rewrite the generated block of ``page``; True if it changed."""
    text = page.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n\n{render_markdown(spec)}\n{END}{tail}"
    if new != text:
        page.write_text(new, encoding="utf-8")
        return True
    return False


def extract_block(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip() + "\n"
