-- Requêtes d'exemple sur la base du service d'attrition (PostgreSQL 16).
--
-- À exécuter avec `attrition db shell` (psql sur la base utilisée), une par une, ou en bloc
-- avec `\i sql/queries.sql`. Toutes sont en lecture seule. Chaque requête commence par une
-- ligne `-- name: …` : le test tests/db/test_queries_sql.py les exécute toutes contre une
-- vraie base, elles ne peuvent donc pas diverger du schéma (sql/schema.sql).
--
-- Rappel du schéma : `prediction_inputs` (ce qui a été envoyé au modèle) et `predictions`
-- (ce qu'il a répondu) sont reliées une à une par `predictions.input_id` ; la vue
-- `employee_features` joint les trois extraits TechNova, cible `a_quitte_l_entreprise` comprise.


-- name: attrition_reelle_par_departement
-- Taux de départ réel par département, dans le jeu de données chargé (sans prédiction).
SELECT departement,
       count(*) AS employes,
       count(*) FILTER (WHERE a_quitte_l_entreprise) AS departs,
       round(avg(a_quitte_l_entreprise::int), 3) AS taux_depart_reel
FROM employee_features
GROUP BY departement
ORDER BY departement;


-- name: risque_par_departement
-- Risque prédit par département comparé à l'attrition réelle. Seule la dernière prédiction
-- de chaque employé enregistré compte (les prédictions sans id_employee ne sont reliées à
-- aucun dossier). Une ligne par département ayant au moins une prédiction, aucune sinon.
-- Attention : le modèle a été entraîné sur ces mêmes employés, l'écart n'est donc pas une
-- mesure honnête de sa performance (voir la fiche du modèle pour la validation croisée).
WITH derniere AS (
    SELECT DISTINCT ON (i.id_employee)
           i.id_employee, p.probability, p.label
    FROM predictions p
    JOIN prediction_inputs i ON i.id = p.input_id
    WHERE i.id_employee IS NOT NULL
    ORDER BY i.id_employee, p.id DESC
)
SELECT f.departement,
       count(*) AS employes_evalues,
       round(avg(d.probability)::numeric, 3) AS probabilite_moyenne,
       round(avg((d.label = 'depart')::int), 3) AS part_predite_depart,
       round(avg(f.a_quitte_l_entreprise::int), 3) AS taux_depart_reel
FROM derniere d
JOIN employee_features f ON f.id_employee = d.id_employee
GROUP BY f.departement
ORDER BY f.departement;


-- name: dernieres_predictions
-- Les 20 dernières prédictions avec leur entrée : qui (clé API), par quelle voie, quel
-- modèle, quel résultat, et les principales caractéristiques envoyées (toutes sont dans
-- prediction_inputs ; `payload` garde le corps JSON tel que reçu).
SELECT p.id AS prediction_id,
       p.created_at,
       k.key_id AS client,
       i.source,
       i.request_id,
       m.version AS modele,
       i.id_employee,
       round(p.probability::numeric, 3) AS probabilite,
       p.label,
       p.risk_level,
       i.age,
       i.departement,
       i.poste,
       i.revenu_mensuel,
       i.heures_supplementaires,
       i.satisfaction_employee_environnement,
       i.annees_dans_l_entreprise,
       i.payload
FROM predictions p
JOIN prediction_inputs i ON i.id = p.input_id
JOIN model_versions m ON m.id = p.model_version_id
LEFT JOIN api_keys k ON k.id = i.api_key_id
ORDER BY p.id DESC
LIMIT 20;


-- name: predictions_par_version
-- Volume, risque moyen et latence par version du modèle (les versions jamais utilisées
-- apparaissent avec 0 prédiction).
SELECT m.version,
       m.algorithm,
       m.is_active AS active,
       count(p.id) AS predictions,
       count(p.id) FILTER (WHERE p.label = 'depart') AS departs_predits,
       round(avg(p.probability)::numeric, 3) AS probabilite_moyenne,
       round(avg(p.latency_ms)::numeric, 3) AS latence_moyenne_ms,
       min(p.created_at) AS premiere,
       max(p.created_at) AS derniere
FROM model_versions m
LEFT JOIN predictions p ON p.model_version_id = m.id
GROUP BY m.id
ORDER BY m.id;


-- name: repartition_par_niveau_de_risque
-- Répartition des prédictions par niveau de risque (faible, moyen, eleve) et par voie
-- d'entrée (api, batch, employee, web).
SELECT p.risk_level,
       i.source,
       count(*) AS predictions,
       round(min(p.probability)::numeric, 3) AS probabilite_min,
       round(max(p.probability)::numeric, 3) AS probabilite_max
FROM predictions p
JOIN prediction_inputs i ON i.id = p.input_id
GROUP BY p.risk_level, i.source
ORDER BY p.risk_level, i.source;


-- name: employes_a_risque
-- Les 20 employés encore présents dont la dernière prédiction est la plus élevée :
-- une liste d'entretiens RH à proposer, jamais une décision (RGPD, art. 22).
WITH derniere AS (
    SELECT DISTINCT ON (i.id_employee)
           i.id_employee, p.id AS prediction_id, p.probability, p.risk_level, p.created_at
    FROM predictions p
    JOIN prediction_inputs i ON i.id = p.input_id
    WHERE i.id_employee IS NOT NULL
    ORDER BY i.id_employee, p.id DESC
)
SELECT d.id_employee,
       f.departement,
       f.poste,
       round(d.probability::numeric, 3) AS probabilite,
       d.risk_level,
       d.prediction_id,
       d.created_at
FROM derniere d
JOIN employee_features f ON f.id_employee = d.id_employee
WHERE NOT f.a_quitte_l_entreprise
ORDER BY d.probability DESC, d.id_employee
LIMIT 20;


-- name: matrice_de_confusion_par_version
-- Prédictions des employés enregistrés confrontées à leur départ réel, par version.
-- Même réserve que plus haut : ces employés ont servi à l'entraînement.
SELECT m.version,
       count(*) FILTER (WHERE p.label = 'depart' AND f.a_quitte_l_entreprise) AS vrais_positifs,
       count(*) FILTER (WHERE p.label = 'depart' AND NOT f.a_quitte_l_entreprise) AS faux_positifs,
       count(*) FILTER (WHERE p.label = 'reste' AND f.a_quitte_l_entreprise) AS faux_negatifs,
       count(*) FILTER (WHERE p.label = 'reste' AND NOT f.a_quitte_l_entreprise) AS vrais_negatifs
FROM predictions p
JOIN prediction_inputs i ON i.id = p.input_id
JOIN employee_features f ON f.id_employee = i.id_employee
JOIN model_versions m ON m.id = p.model_version_id
GROUP BY m.id
ORDER BY m.id;


-- name: activite_par_client
-- Prédictions par clé API et par jour (les clés sont désignées par leur identifiant public,
-- jamais par leur secret ni leur empreinte).
SELECT k.key_id,
       k.name,
       k.role,
       date_trunc('day', p.created_at) AS jour,
       count(*) AS predictions
FROM predictions p
JOIN prediction_inputs i ON i.id = p.input_id
LEFT JOIN api_keys k ON k.id = i.api_key_id
GROUP BY k.id, date_trunc('day', p.created_at)
ORDER BY jour DESC, predictions DESC, k.key_id;


-- name: rejets_par_statut
-- Requêtes refusées par statut HTTP et par route (422 : entrée invalide, 401 : clé
-- absente ou invalide, 403 : rôle insuffisant, 429 : débit dépassé, 5xx : panne).
SELECT status,
       route,
       count(*) AS rejets,
       min(received_at) AS premier,
       max(received_at) AS dernier
FROM rejected_requests
GROUP BY status, route
ORDER BY rejets DESC, status, route;


-- name: champs_les_plus_souvent_invalides
-- Les champs qui font le plus souvent refuser une entrée (erreurs 422 détaillées dans la
-- colonne JSON `errors` : [{"champ", "message", "ligne"?}]).
SELECT e.item ->> 'champ' AS champ,
       count(*) AS occurrences,
       min(e.item ->> 'message') AS exemple_de_message
FROM rejected_requests r
CROSS JOIN LATERAL jsonb_array_elements(r.errors) AS e(item)
WHERE r.status = 422
GROUP BY e.item ->> 'champ'
ORDER BY occurrences DESC, champ
LIMIT 10;


-- name: historique_d_un_employe
-- Droit d'accès (RGPD, art. 15) : tout ce que le service a enregistré pour un employé
-- (ici l'employé 1 ; remplacez l'identifiant). Les prédictions demandées sans id_employee
-- ne sont rattachées à personne et n'apparaissent pas.
SELECT p.id AS prediction_id,
       p.created_at,
       i.source,
       i.request_id,
       k.key_id AS client,
       m.version AS modele,
       round(p.probability::numeric, 3) AS probabilite,
       p.label,
       p.risk_level,
       p.explanation,
       i.payload
FROM prediction_inputs i
JOIN predictions p ON p.input_id = i.id
JOIN model_versions m ON m.id = p.model_version_id
LEFT JOIN api_keys k ON k.id = i.api_key_id
WHERE i.id_employee = 1
ORDER BY p.id;


-- name: modele_actif
-- La version active du registre, son seuil, ses métriques et l'empreinte de son artefact.
SELECT version,
       algorithm,
       threshold,
       threshold_criterion,
       metrics,
       artifact_sha256,
       created_at,
       activated_at
FROM model_versions
WHERE is_active;


-- name: cles_api_utilisables
-- Les clés API ni révoquées ni expirées, avec leur dernier usage (sans `key_hash`).
SELECT key_id,
       name,
       role,
       created_at,
       expires_at,
       last_used_at
FROM api_keys
WHERE revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY id;


-- name: entrees_sans_sortie
-- Contrôle d'intégrité : une entrée sans sa sortie ne doit jamais exister (elles sont
-- écrites par une seule instruction). Le résultat attendu est vide.
SELECT i.id, i.received_at, i.request_id
FROM prediction_inputs i
LEFT JOIN predictions p ON p.input_id = i.id
WHERE p.id IS NULL;
