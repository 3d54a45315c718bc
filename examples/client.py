"""Minimal Python client of the attrition API (httpx).

Usage::

    export ATTRITION_API_KEY=ftr_...   # printed once by `make run` or `attrition keys create`
    python examples/client.py          # http://127.0.0.1:8000 by default
    ATTRITION_API_URL=https://... python examples/client.py
"""

from __future__ import annotations

import os
import sys
import uuid

import httpx

EMPLOYEE = {
    "age": 41,
    "genre": "F",
    "revenu_mensuel": 5993,
    "statut_marital": "Célibataire",
    "departement": "Commercial",
    "poste": "Cadre Commercial",
    "nombre_experiences_precedentes": 8,
    "annees_experience_totale": 8,
    "annees_dans_l_entreprise": 6,
    "annees_dans_le_poste_actuel": 4,
    "satisfaction_employee_environnement": 2,
    "note_evaluation_precedente": 3,
    "niveau_hierarchique_poste": 2,
    "satisfaction_employee_nature_travail": 4,
    "satisfaction_employee_equipe": 1,
    "satisfaction_employee_equilibre_pro_perso": 1,
    "note_evaluation_actuelle": 3,
    "heures_supplementaires": True,
    "augmentation_salaire_precedente": 11.0,
    "nombre_participation_pee": 0,
    "nb_formations_suivies": 0,
    "distance_domicile_travail": 1,
    "niveau_education": 2,
    "domaine_etude": "Infra & Cloud",
    "frequence_deplacement": "Occasionnel",
    "annees_depuis_la_derniere_promotion": 0,
    "annees_sous_responsable_actuel": 5,
}


def main() -> int:
    base_url = os.environ.get("ATTRITION_API_URL", "http://127.0.0.1:8000")
    key = os.environ.get("ATTRITION_API_KEY")
    if not key:
        print("Définissez ATTRITION_API_KEY (clé affichée par `make run`).", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as api:
        # A retry with the same Idempotency-Key returns the same prediction, never a second one.
        response = api.post(
            "/v1/predictions",
            json=EMPLOYEE,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if response.status_code != 201:
            problem = response.json()
            print(f"{response.status_code} {problem['title']} : {problem['detail']}")
            for error in problem.get("errors", []):
                print(f"  - {error['champ']} : {error['message']}")
            return 1
        result = response.json()
        print(
            f"Prédiction {result['prediction_id']} (modèle {result['model_version']}) : "
            f"{result['probabilite_depart']:.1%} → {result['prediction']} "
            f"(risque {result['niveau_risque']}, seuil {result['seuil']:.2f})"
        )
        for factor in result["explication"]["facteurs_hausse"]:
            print(f"  + {factor['libelle']} ({factor['valeur']}) : {factor['contribution']:+.2f}")
        for factor in result["explication"]["facteurs_baisse"]:
            print(f"  - {factor['libelle']} ({factor['valeur']}) : {factor['contribution']:+.2f}")
        recorded = api.get(f"/v1/predictions/{result['prediction_id']}").json()
        print(f"Enregistrée le {recorded['horodatage']} (requête {recorded['request_id']}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
