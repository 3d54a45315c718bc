"""Render docs/fiabilite.md from the figures the reliability tests wrote (reports/fiabilite.json).

    python scripts/reliability_report.py            # write docs/fiabilite.md
    python scripts/reliability_report.py --check    # exit 1 if the page is not up to date

The page embeds the figures it was rendered from, so that a test can check that it was
generated, not edited (tests/reliability/test_report.py). `make soak` runs every reliability
test at full scale, then this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "reports" / "fiabilite.json"
PAGE = ROOT / "docs" / "fiabilite.md"
DATA_START = "<!-- données : début -->"
DATA_END = "<!-- données : fin -->"
MISSING = "non mesuré"


#: What the reliability tests found wrong in the service, and what was changed.
THREATS = (
    ("Modifier une prédiction scellée", "propriétaire", "détectée : « enregistrement modifié »",
     "empreinte de l'enregistrement (HMAC calculé à la réponse, clé hors base)",
     "`test_a_edited_sealed_rows_are_each_named`"),
    ("Modifier une prédiction avant son scellement", "propriétaire",
     "détectée : « enregistrement modifié », avant et après scellement",
     "empreinte calculée par le service à la réponse, écrite avec la ligne",
     "`test_b_a_row_edited_before_it_is_sealed_is_caught`"),
    ("Modifier une prédiction et recalculer tous les liens suivants", "propriétaire (sans la clé)",
     "détectée : « modifié » puis « inséré hors chaîne » pour chaque lien recalculé",
     "liens HMAC-SHA256 sous la clé d'audit",
     "`test_c_an_edit_with_every_later_link_recomputed_is_caught`"),
    ("Supprimer les dernières prédictions avec leurs liens", "propriétaire",
     "détectée : « enregistrement supprimé », la dernière prédiction publiée nommée",
     "points de contrôle signés publiés hors base (journal, fichier, `GET /v1/audit/checkpoint`)",
     "`test_d_deleting_the_newest_rows_with_their_links_is_caught`"),
    ("Supprimer une prédiction scellée au milieu de la chaîne", "propriétaire",
     "détectée : « enregistrement supprimé »", "lien sans enregistrement",
     "`test_a_deleted_record_is_detected_and_named`"),
    ("Insérer une prédiction (copie d'un enregistrement authentique)", "propriétaire",
     "détectée : « enregistrement inséré hors chaîne », l'original nommé",
     "identifiant de requête attribué par le serveur, couvert par l'empreinte",
     "`test_f_a_record_inserted_by_the_owner_is_caught`"),
    ("Faire passer une suppression pour un effacement RGPD", "propriétaire (sans la clé)",
     "détectée : « enregistrement supprimé »", "effacement signé avec la clé d'audit",
     "`test_an_erasure_record_forged_by_the_owner_is_caught`"),
    ("Insérer un lien forgé (même pour un identifiant lointain)", "propriétaire",
     "détectée : « enregistrement inséré hors chaîne »", "HMAC du lien ; positions contiguës",
     "`test_e_a_forged_link_is_caught`"),
    ("Écrire un lien, modifier ou supprimer la trace", "rôle applicatif (processus compromis)",
     "empêchée",
     "droits (ni INSERT sur `audit_chain`, ni UPDATE/DELETE) ; `audit_append` "
     "vérifie les positions",
     "`test_the_application_role_cannot_escape`"),
    ("Dé-révoquer une clé API", "rôle applicatif, propriétaire", "empêchée",
     "déclencheur `refuse_unrevoke`", "`test_the_application_role_cannot_escape`"),
    ("Changer le modèle servi", "rôle applicatif", "empêchée",
     "pas d'UPDATE sur `model_versions` (activation : CLI du propriétaire)",
     "`test_the_application_role_cannot_escape`"),
    ("Obtenir un droit non prévu", "rôle applicatif", "empêchée (tout ajout fait échouer un test)",
     "liste des droits relue depuis le catalogue, comparée à une liste revue",
     "`test_the_application_role_has_exactly_the_reviewed_grants`"),
    ("Lire les identifiants du propriétaire dans un processus de l'API", "processus compromis",
     "empêchée", "les processus ne reçoivent que l'URL du rôle applicatif",
     "`test_workers_never_see_the_owner_credentials`"),
    ("Se connecter à la base embarquée sans mot de passe", "utilisateur local", "empêchée",
     "`pg_hba.conf` : SCRAM-SHA-256 sur le socket Unix seulement ; mots de passe 0600",
     "`test_the_embedded_server_requires_scram_passwords`"),
    ("Faire croire à une falsification (prédictions jamais scellées sous charge)",
     "charge ordinaire",
     "empêchée", "scellement de ce qui n'est pas scellé, positions attribuées sous verrou",
     "`test_every_prediction_is_sealed_once_under_mixed_load`"),
    ("Retirer les déclencheurs", "propriétaire", "non empêchée ; ses effets restent détectés",
     "empreintes et points de contrôle", "tests `test_a` à `test_e`"),
    ("Supprimer ou échanger des prédictions pas encore scellées (≤ 5 s)", "propriétaire",
     "non détectée", "—", "—"),
)  # fmt: skip

FIXES = (
    "Les erreurs étaient documentées en `application/json` alors que l'API répond en "
    "`application/problem+json` ; les réponses 413, 415 et 503 manquaient à la documentation "
    "de la plupart des opérations (`problems.document_problems`).",
    "Une réponse 405 n'annonçait dans `Allow` qu'une partie des méthodes d'une ressource "
    "servie par deux routes (`GET` et `POST /v1/predictions`).",
    "`GET /v1/predictions/batch` répondait 422 (identifiant de prédiction mal formé) au lieu "
    "de 405.",
    "Les filtres de date acceptaient un horodatage Unix (`depuis=0.5`) au lieu du seul format "
    "documenté (ISO 8601).",
    '`id_employee` (et `expires_in_days` des clés) acceptaient `"34"` et `true` alors que le '
    "schéma publié dit « entier ».",
    "Un corps qui n'est pas de l'UTF-8 recevait un 400 non documenté, en anglais ; un corps "
    "trop gros envoyé par morceaux aussi : désormais 422 « JSON invalide » et 413.",
    "Les refus prononcés avant le routage (413, 415) n'étaient pas tracés dans "
    "`rejected_requests` ; certains messages restaient en anglais (chaîne trop longue, motif, "
    "texte Unicode invalide).",
    "Après un redémarrage de PostgreSQL, les premières requêtes échouaient (connexions mortes "
    "prêtées par le pool) ; après une longue panne, le pool pouvait attendre des minutes "
    "avant de retenter (délai exponentiel) : connexions vérifiées avant d'être prêtées, "
    "nouvelle tentative à la demande.",
    "Un refus pour base indisponible attendait encore une connexion pour se tracer, ce qui "
    "retardait le 503.",
    "`attrition serve` arrêté par SIGTERM sortait avec le code 143 sans libérer la base "
    "embarquée (uvicorn relance le signal après son arrêt propre).",
    "Vingt échecs d'authentification en une minute depuis une adresse bloquaient aussi les "
    "clés valides de cette adresse (donc tous les clients derrière un même proxy) ; un client "
    "local échappait au contraire à toute limite en changeant d'`X-Forwarded-For` : seuls "
    "les échecs sont freinés, et l'adresse ne vient d'`X-Forwarded-For` que derrière un "
    "proxy déclaré (`ATTRITION_API__TRUSTED_PROXIES`).",
    "Un en-tête de 30 Mo recevait un 200 (l'analyseur HTTP httptools n'a pas de limite) : "
    "431 au-delà de 16 Ko de ligne de requête et d'en-têtes.",
    "Un corps mal formé sans clé était analysé et son refus écrit en base avant la "
    "vérification de la clé (300 requêtes sans clé, 300 lignes) ; une erreur de lot de 1 000 "
    "lignes invalides faisait une réponse de 2,3 Mo et une ligne de 178 Ko.",
    "Le quota par clé comptait les requêtes, pas les prédictions (2 346 prédictions/s avec "
    "une clé) : quotas de prédictions par minute et par jour, en-têtes `RateLimit-*`.",
    "Après un SIGKILL du superviseur de `attrition serve --workers 2`, les processus de "
    "travail continuaient de servir, et un nouveau serveur se partageait le port avec eux "
    "(`SO_REUSEPORT`) : les processus suivent leur superviseur, une seconde génération "
    "refuse de démarrer.",
)


def limits() -> list[str]:
    """The limits the service applies, read from its settings' defaults (never typed here)."""
    from attrition.api.problems import PAYLOAD_EXCERPT_BYTES
    from attrition.api.routing import MAX_JSON_DEPTH
    from attrition.config import ApiSettings

    api = ApiSettings()
    rows = [
        ("Ligne de requête et en-têtes (431 au-delà)", f"{number(api.max_header_bytes)} octets",
         "`ATTRITION_API__MAX_HEADER_BYTES`"),
        ("Corps de requête (413 au-delà)", f"{number(api.max_body_bytes)} octets",
         "`ATTRITION_API__MAX_BODY_BYTES`"),
        ("Profondeur d'un corps JSON (422 `corps` au-delà)",
         f"{number(MAX_JSON_DEPTH)} niveaux", "—"),
        ("Employés par lot", number(api.max_batch_size), "`ATTRITION_API__MAX_BATCH_SIZE`"),
        ("Erreurs listées dans une réponse 422 (et dans sa trace)",
         f"{api.max_errors_listed} + le total", "`ATTRITION_API__MAX_ERRORS_LISTED`"),
        ("Extrait du corps gardé dans `rejected_requests`",
         f"{number(PAYLOAD_EXCERPT_BYTES)} caractères", "—"),
        ("Requêtes par clé", f"{number(api.rate_limit_per_minute)} / min",
         "`ATTRITION_API__RATE_LIMIT_PER_MINUTE`"),
        ("Prédictions par clé", f"{number(api.predictions_per_minute)} / min",
         "`ATTRITION_API__PREDICTIONS_PER_MINUTE`"),
        ("Prédictions par clé et par jour (UTC)", number(api.predictions_per_day),
         "`ATTRITION_API__PREDICTIONS_PER_DAY`, ou `attrition keys quota`"),
        ("Échecs d'authentification par adresse, et par identifiant de clé",
         f"{api.auth_failures_per_minute} / min (429 ensuite, pour les échecs seulement)",
         "`ATTRITION_API__AUTH_FAILURES_PER_MINUTE`"),
        ("Échecs de connexion à l'interface web, par adresse",
         f"{api.sign_in_failures_per_minute} / min (429 ensuite pour toute connexion depuis "
         "cette adresse)", "`ATTRITION_API__SIGN_IN_FAILURES_PER_MINUTE`"),
        ("Refus sans clé valide écrits en base, par adresse",
         f"{api.rejections_recorded_per_minute} / min",
         "`ATTRITION_API__REJECTIONS_RECORDED_PER_MINUTE`"),
        ("… toutes adresses confondues", f"{api.rejections_recorded_per_minute_total} / min",
         "`ATTRITION_API__REJECTIONS_RECORDED_PER_MINUTE_TOTAL`"),
    ]  # fmt: skip
    lines = ["| Limite | Valeur par défaut | Réglage |", "| --- | ---: | --- |"]
    lines += [f"| {label} | {value} | {knob} |" for label, value, knob in rows]
    return lines


def number(value: Any) -> str:
    """A figure written the French way: 2 000 ; 1,25."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",").rstrip("0").rstrip(",")
    return str(value)


def when(section: dict[str, Any]) -> str:
    if not section:
        return f"_{MISSING} : lancez `make soak`._"
    date = str(section.get("date", "?")).replace("T", " ").replace("+00:00", " UTC")
    return f"_Mesuré par `{section.get('commande', '?')}` le {date}._"


def table(rows: list[tuple[str, Any]]) -> list[str]:
    lines = ["| Mesure | Valeur |", "| --- | ---: |"]
    lines += [f"| {label} | {number(value)} |" for label, value in rows]
    return lines


def render(figures: dict[str, Any]) -> str:
    fuzz = figures.get("fuzzing", {})
    props = figures.get("proprietes", {})
    bad = figures.get("entrees_invalides", {})
    load = figures.get("charge", {})
    crash = figures.get("crash", {})
    flood = figures.get("inondation", {})
    faults: list[dict[str, Any]] = figures.get("pannes", [])
    survived = sum(1 for f in faults if f.get("survecue"))
    lost = None
    if load or crash:
        lost = load.get("enregistrements_perdus", 0) + crash.get("enregistrements_perdus", 0)

    out = [
        "# Fiabilité",
        "",
        "Ce que le service a subi dans ses tests de fiabilité (`tests/reliability/`), et comment",
        "il s'en est sorti : entrées aberrantes, fuzzing de l'API, pannes de la base de données",
        "et du modèle, charge, arrêts brutaux.",
        "",
        '!!! note "Page générée"',
        "    Cette page est produite par `scripts/reliability_report.py` à partir des mesures",
        "    que les tests écrivent dans `reports/fiabilite.json` : aucun chiffre n'y est saisi",
        "    à la main. Pour la régénérer avec les volumes complets (fuzzing à 200 exemples par",
        "    opération, 2 000 requêtes) : **`make soak`**. `make test` refait les mêmes",
        "    vérifications avec des volumes réduits ; `make fuzz` ne refait que le fuzzing.",
        "",
        "## En bref",
        "",
        *table(
            [
                ("Cas de fuzzing exécutés (Schemathesis)", fuzz.get("cas_executes")),
                (
                    "Échecs trouvés par le fuzzing (lors de la dernière exécution)",
                    fuzz.get("echecs"),
                ),
                ("Entrées invalides essayées (catalogue)", bad.get("cas")),
                ("… refusées avec le champ nommé, tracées une fois", bad.get("tracees_une_fois")),
                ("Pannes injectées", len(faults) if faults else None),
                ("… surmontées", survived if faults else None),
                ("Requêtes sous charge (32 clients simultanés)", load.get("requetes")),
                ("Enregistrements perdus", lost),
            ]
        ),
        "",
        "## Fuzzing de l'API",
        "",
        when(fuzz),
        "",
        f"{fuzz.get('outil', 'Schemathesis')} génère des requêtes valides et invalides à partir",
        "du document OpenAPI de l'application (`/openapi.json`) et vérifie chaque réponse : pas",
        "d'erreur 5xx, un code de statut documenté, le type de contenu et le schéma de corps",
        "documentés, les données invalides refusées, les données valides acceptées. Graine fixe",
        "et réglages dans `schemathesis.toml` ; test : `tests/reliability/test_fuzz.py`.",
        "",
        *table(
            [
                ("Opérations testées", fuzz.get("operations")),
                ("Exemples par opération", fuzz.get("exemples_par_operation")),
                ("Graine", str(fuzz["graine"]) if "graine" in fuzz else None),
                ("Cas exécutés", fuzz.get("cas_executes")),
                ("Échecs", fuzz.get("echecs")),
            ]
        ),
        "",
        "## Propriétés du schéma d'entrée",
        "",
        when(props),
        "",
        "Hypothesis tire des profils d'employés dans les domaines du vocabulaire",
        "(`tests/reliability/test_properties.py`) : tout profil valide est accepté et noté",
        "(probabilité dans [0, 1], la même seul ou dans un lot) ; tout champ sorti de son",
        "domaine est refusé en nommant ce champ, en français ; un document JSON conforme au",
        "schéma JSON publié est accepté exactement quand l'API l'accepte. Les règles de",
        "cohérence entre champs (anciennetés dans la carrière) ne s'écrivent pas en JSON",
        "Schema : cette dernière propriété porte sur les documents qui les respectent.",
        "",
        *table(
            [
                ("Profils valides notés", props.get("profils_valides")),
                ("Mutations d'un champ refusées et nommées", props.get("mutations_refusees")),
                ("Documents JSON comparés au schéma publié", props.get("documents_json_compares")),
                ("… dont conformes au schéma", props.get("documents_json_valides")),
            ]
        ),
        "",
        "## Catalogue d'entrées invalides",
        "",
        when(bad),
        "",
        "`tests/reliability/bad_inputs.yaml` : types faux, valeurs hors domaine, catégories",
        "inconnues, champs manquants ou en trop, combinaisons incohérentes, corps vide ou mal",
        "formé, mauvais type de contenu, NaN et infinis, chaînes très longues, curiosités",
        "Unicode, corps de 2 Mo, lot de 1 001 employés, page trop grande, injections SQL et de",
        "script. Chacune doit être refusée avec son statut et le champ nommé dans le message,",
        "n'écrire aucune prédiction et être tracée exactement une fois dans `rejected_requests`.",
        "",
        *table(
            [
                ("Entrées essayées", bad.get("cas")),
                ("Refusées avec le bon statut et le champ nommé", bad.get("refusees_et_nommees")),
                ("Tracées une fois, sans prédiction écrite", bad.get("tracees_une_fois")),
            ]
        ),
        "",
        "## Pannes injectées",
        "",
    ]
    if faults:
        out += [
            "| Panne | Injection | Attendu | Résultat | Mesure |",
            "| --- | --- | --- | --- | --- |",
        ]
        for f in faults:
            verdict = "surmontée" if f.get("survecue") else "**ÉCHEC**"
            cells = [f["panne"], f["injection"], f["attendu"], verdict, f.get("mesure") or ""]
            out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        commands = sorted({str(f.get("commande")) for f in faults})
        out += ["", f"_Mesuré par {', '.join(f'`{c}`' for c in commands)}._"]
    else:
        out.append(f"_{MISSING} : lancez `make soak`._")
    out += [
        "",
        "## Charge et arrêts brutaux",
        "",
        when(load),
        "",
        "Un vrai serveur (`attrition serve`, uvicorn) sur 127.0.0.1, la base de test, 32 clients",
        "simultanés (`tests/reliability/test_load_and_crash.py`). Une requête sur deux porte une",
        "clé d'idempotence (écrite dans sa propre transaction), l'autre non (écriture groupée) :",
        "les deux chemins d'écriture sont chargés. Chaque réponse 201 est rapprochée de son",
        "entrée et de sa sortie en base (identifiants, probabilité, décision, valeurs envoyées).",
        "",
        *table(
            [
                ("Requêtes", load.get("requetes")),
                ("Réponses 201", load.get("reponses_201")),
                ("Réponses 503 (rien d'écrit)", load.get("reponses_503")),
                ("Requêtes restées sans réponse (erreur réseau)", load.get("sans_reponse")),
                ("… renvoyées avec leur clé d'idempotence", load.get("erreurs_reseau_rejouees")),
                ("Entrées enregistrées", load.get("lignes_entree")),
                ("Sorties enregistrées", load.get("lignes_sortie")),
                ("Enregistrements perdus", load.get("enregistrements_perdus")),
                ("Entrées sans sortie", load.get("entrees_sans_sortie")),
                ("Débit (requêtes/s, un processus)", load.get("debit_par_s")),
                ("Latence médiane (ms)", load.get("latence_p50_ms")),
                ("Latence p95 (ms)", load.get("latence_p95_ms")),
            ]
        ),
        "",
        "Arrêt brutal (SIGKILL) au milieu d'une même charge, redémarrage, puis nouvel envoi de",
        "chaque requête restée sans réponse qui porte une clé d'idempotence (et de celles qui",
        "n'étaient pas encore parties). Une requête sans clé coupée par l'arrêt a au plus une",
        "prédiction : son client ne peut pas savoir si elle a été enregistrée, c'est à cela que",
        "sert la clé.",
        "",
        when(crash),
        "",
        *table(
            [
                ("Requêtes prévues", crash.get("requetes")),
                ("Réponses reçues avant l'arrêt", crash.get("reponses_avant_kill")),
                ("Requêtes coupées par l'arrêt", crash.get("coupees_par_le_kill")),
                (
                    "… déjà enregistrées au moment de l'arrêt",
                    crash.get("enregistrees_sans_reponse"),
                ),
                ("Renvoyées après le redémarrage", crash.get("renvoyees_apres_redemarrage")),
                ("… rejouées à l'identique (déjà enregistrées)", crash.get("rejouees")),
                ("Coupées sans clé (au plus une prédiction)", crash.get("sans_cle_incertaines")),
                ("Prédictions au final", crash.get("predictions_finales")),
                ("Enregistrements perdus", crash.get("enregistrements_perdus")),
                ("Doublons", crash.get("doublons")),
                ("Entrées sans sortie", crash.get("entrees_sans_sortie")),
            ]
        ),
        "",
        "Les débits et latences dépendent de la machine (ici partagée) : ce sont des ordres de",
        "grandeur ; les performances sont mesurées par le banc d'essai (`make bench`).",
        "",
        "## Inondation : mauvaises clés et en-têtes géants",
        "",
        when(flood),
        "",
        "Un vrai serveur (un processus) avec les limites par défaut. Huit clients munis d'une",
        "clé valide envoient des prédictions, une fois seuls, une fois pendant qu'un autre",
        "processus, **depuis la même adresse**, envoie aussi vite que le serveur répond des",
        "requêtes avec une mauvaise clé et des requêtes dont les en-têtes dépassent 16 Ko",
        "(`tests/reliability/test_flood.py`, 60 s par phase dans `make soak`). Attendu : toutes",
        "les requêtes valides reçoivent un 2xx, et leur p99 reste sous le double de celui sans",
        "inondation.",
        "",
        *table(
            [
                ("Durée de chaque phase (s)", flood.get("secondes")),
                ("Clients valides", flood.get("clients_valides")),
                ("Requêtes valides sans inondation", flood.get("requetes_valides_sans")),
                ("Requêtes valides pendant l'inondation", flood.get("requetes_valides_pendant")),
                ("… réponses autres que 2xx", flood.get("reponses_valides_non_2xx")),
                ("p99 sans inondation (ms)", flood.get("p99_sans_ms")),
                ("p99 pendant l'inondation (ms)", flood.get("p99_pendant_ms")),
                ("Requêtes de l'inondation", flood.get("requetes_inondation")),
                ("… refusées 401 (mauvaise clé)", flood.get("inondation_401")),
                ("… refusées 429 (trop d'échecs)", flood.get("inondation_429")),
                ("… refusées 431 (en-têtes trop gros)", flood.get("inondation_431")),
            ]
        ),
        "",
        "## Limites appliquées {#limites-appliquees}",
        "",
        "Lues dans les valeurs par défaut des réglages du service au moment où la page est",
        "produite ([Sécurité](securite.md#limites-contre-les-abus) explique chacune).",
        "",
        *limits(),
        "",
        "## Ce que ces tests ont fait corriger",
        "",
        *[f"- {fix}" for fix in FIXES],
        "",
        "## Trace d'audit face à son propriétaire",
        "",
        "Qui peut quoi : le **rôle applicatif** (`attrition_app`, celui des processus de",
        "l'API) lit, ajoute des lignes à la trace et scelle par `audit_append()`, rien",
        "d'autre ; il détient la clé d'audit pour calculer l'empreinte de ce qu'il répond. Le",
        "**propriétaire** de la base (`attrition_owner`, et le superutilisateur) peut tout",
        "faire aux tables, y compris retirer les déclencheurs : il ne détient pas la clé",
        "d'audit (`ATTRITION_AUDIT_KEY`, jamais en base). Les déclencheurs arrêtent les",
        "erreurs et le rôle applicatif ; contre le propriétaire, ce sont les empreintes",
        "(HMAC-SHA256) et les points de contrôle publiés hors de la base qui comptent.",
        "",
        "| Attaque | Qui peut la faire | Détectée ou empêchée | Par quoi | Test |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {' | '.join(row)} |" for row in THREATS],
        "",
        "## Limites connues",
        "",
        "- Deux prédictions pas encore scellées (au plus `seal_interval_s`, 5 s) peuvent être",
        "  supprimées ou échanger leurs contenus authentiques sans que la vérification le voie :",
        "  l'empreinte d'un enregistrement ne couvre pas son identifiant, attribué par la base.",
        "- Qui détient à la fois la base et la clé d'audit (propriétaire et processus de l'API",
        "  compromis ensemble) peut réécrire la chaîne après le dernier point de contrôle qu'un",
        "  auditeur a conservé ; avant, la différence avec ce point de contrôle se voit.",
        "- Un processus de l'API compromis peut ajouter de fausses prédictions avec une",
        "  empreinte valide (il a la clé) ; il ne peut ni modifier ni supprimer la trace.",
        "- Les refus dus à la base de données elle-même (503) ne sont pas tracés dans",
        "  `rejected_requests` (la base est indisponible) : ils sont journalisés.",
        "- Les limites par minute vivent dans la mémoire partagée de chaque réplique : un",
        "  redémarrage les remet à zéro, et N répliques en accordent N fois autant. Le quota",
        "  journalier est compté dans PostgreSQL, pour toutes les répliques.",
        "",
        "## Données",
        "",
        '??? info "Les mesures dont cette page est tirée (reports/fiabilite.json)"',
        "",
        f"    {DATA_START}",
        "    ```json",
        *[
            f"    {line}"
            for line in json.dumps(
                figures, ensure_ascii=False, indent=2, sort_keys=True
            ).splitlines()
        ],
        "    ```",
        f"    {DATA_END}",
        "",
    ]
    return "\n".join(out)


def embedded_figures(page: str) -> dict[str, Any]:
    """The figures a rendered page was made from."""
    block = page.split(DATA_START, 1)[1].split(DATA_END, 1)[0]
    lines = [line.removeprefix("    ") for line in block.splitlines()]
    body = "\n".join(line for line in lines if not line.startswith("```"))
    data: dict[str, Any] = json.loads(body)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=FIGURES)
    parser.add_argument("--output", type=Path, default=PAGE)
    parser.add_argument("--check", action="store_true", help="only check the page is current")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        print(f"{args.input} introuvable : lancez `make soak` (ou `make test`).", file=sys.stderr)
        return 1
    page = render(json.loads(args.input.read_text(encoding="utf-8")))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != page:
            print(f"{args.output} n'est pas à jour : lancez `make soak`.", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(page, encoding="utf-8")
    print(f"{args.output} écrit depuis {args.input}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
