"""Record real API exchanges for docs/api.md (``make api-examples``).

Starts the application in-process (FastAPI TestClient) on a temporary embedded PostgreSQL
(``demo_service``), sends one request per route plus the common errors, and writes each real
response (status, the headers a client uses, JSON body) to ``docs/exemples/<name>.json``.
API keys are redacted to ``ftr_…``, the temporary directory to ``…`` and the artifact's SHA-256
shortened to 12 characters; everything else is what the service answered. docs/api.md
includes these files with pymdownx.snippets.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from demo_service import Demo, demo_service, say

from attrition.config import PROJECT_ROOT

OUT = PROJECT_ROOT / "docs" / "exemples"
KEY_RE = re.compile(r"ftr_[0-9a-z]{8}_[0-9A-Za-z]{38}")
# The headers a client acts on; the security headers are described in docs/securite.md.
KEPT_HEADERS = (
    "content-type",
    "location",
    "x-request-id",
    "retry-after",
    "www-authenticate",
    "allow",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
)


def redact(value: Any, workdir: str) -> Any:
    if isinstance(value, str):
        return KEY_RE.sub("ftr_…", value).replace(workdir, "…")
    if isinstance(value, list):
        return [redact(v, workdir) for v in value]
    if isinstance(value, dict):
        # A full 64-hex digest in a JSON string trips the secret scan (make lint): shortened.
        return {
            k: f"{v[:12]}…" if k == "sha256" and isinstance(v, str) else redact(v, workdir)
            for k, v in value.items()
        }
    return value


class Recorder:
    def __init__(self, client: Any, demo: Demo, out: Path) -> None:
        self.client = client
        self.demo = demo
        self.out = out
        self.written: list[str] = []

    def __call__(
        self,
        name: str,
        method: str,
        url: str,
        *,
        role: str | None,
        expected: int,
        **kwargs: Any,
    ) -> Any:
        headers = {"X-Request-ID": f"exemple-{name}"}
        if role is not None:
            headers["Authorization"] = f"Bearer {self.demo.keys[role]}"
        response = self.client.request(method, url, headers=headers, **kwargs)
        if response.status_code != expected:
            raise SystemExit(
                f"{method} {url}: {response.status_code} instead of {expected}\n{response.text}"
            )
        body = response.json() if response.content else None
        record = {
            "requete": f"{method} {url}",
            "statut": response.status_code,
            "en_tetes": {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers},
            "corps": body,
        }
        text = json.dumps(redact(record, str(self.demo.workdir)), ensure_ascii=False, indent=2)
        (self.out / f"{name}.json").write_text(text + "\n", encoding="utf-8")
        self.written.append(name)
        return body


def record_all(demo: Demo, out: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's notice about httpx, not ours to act on
        from fastapi.testclient import TestClient

    from attrition.api.app import create_app
    from attrition.api.schemas import EXAMPLE_EMPLOYEE

    app = create_app(demo.settings, database=demo.database)
    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=True) as client:
        rec = Recorder(client, demo, out)
        rec("sante", "GET", "/health", role=None, expected=200)
        rec("disponibilite", "GET", "/ready", role=None, expected=200)
        employee = {**EXAMPLE_EMPLOYEE, "id_employee": 1}
        rec("prediction", "POST", "/v1/predictions", role="predicteur", expected=201, json=employee)
        # The same employee with and without overtime: the batch shows its effect on the score.
        batch = {
            "employes": [EXAMPLE_EMPLOYEE, {**EXAMPLE_EMPLOYEE, "heures_supplementaires": False}]
        }
        rec(
            "prediction_lot",
            "POST",
            "/v1/predictions/batch",
            role="predicteur",
            expected=201,
            json=batch,
        )
        created = rec(
            "prediction_employe",
            "POST",
            "/v1/employees/1/predictions",
            role="predicteur",
            expected=201,
        )
        rec("predictions_liste", "GET", "/v1/predictions?limite=2", role="auditeur", expected=200)
        rec(
            "prediction_lecture",
            "GET",
            f"/v1/predictions/{created['prediction_id']}",
            role="predicteur",
            expected=200,
        )
        rec("employes_liste", "GET", "/v1/employees?limite=2", role="auditeur", expected=200)
        rec("employe_lecture", "GET", "/v1/employees/1", role="auditeur", expected=200)
        rec("modele", "GET", "/v1/model", role="auditeur", expected=200)
        key = rec(
            "cle_creation",
            "POST",
            "/v1/keys",
            role="admin",
            expected=201,
            json={"name": "outil-rh", "role": "predicteur", "expires_in_days": 90},
        )
        rec("cles_liste", "GET", "/v1/keys", role="admin", expected=200)
        rec("cle_revocation", "DELETE", f"/v1/keys/{key['key_id']}", role="admin", expected=200)
        invalid = [
            {**EXAMPLE_EMPLOYEE, "age": 75},
            EXAMPLE_EMPLOYEE,
            {**EXAMPLE_EMPLOYEE, "poste": "Astronaute", "annees_dans_le_poste_actuel": 9},
        ]
        rec(
            "erreur_422",
            "POST",
            "/v1/predictions/batch",
            role="predicteur",
            expected=422,
            json={"employes": invalid},
        )
        rec("erreur_401", "GET", "/v1/model", role=None, expected=401)
        rec("erreur_403", "POST", "/v1/predictions", role="auditeur", expected=403, json=employee)
        rec("erreur_404", "GET", "/v1/employees/99999", role="auditeur", expected=404)
        return rec.written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUT, help="output folder")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with demo_service() as demo:
        written = record_all(demo, args.output)
    say(
        f"{len(written)} échanges réels écrits dans {args.output} "
        f"en {time.perf_counter() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
