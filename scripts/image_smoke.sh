#!/usr/bin/env bash
# Build the Docker image and run it the way the Hugging Face Space does, then the other ways
# docs/deploiement.md documents (`make image-smoke`). Prints each step and its timings and
# writes them to reports/image-smoke.json (shown in docs/deploiement.md).
#
# Scenarios, all against the image just built:
#   1. Space: uid 1000, read-only root, /data volume, port 7860, secrets in the environment,
#      framing allowed to https://huggingface.co: /health (GET, HEAD), /ready, `/`, CSP,
#      a prediction, a refusal; restart (data kept, no crash recovery); clean stop (exit 0).
#   2. Stop during the first start (during training): exit 0 within docker's 10 s, PostgreSQL
#      shut down cleanly, and the next start resumes without crash recovery and gets ready.
#   3. The documented demo `docker run` (ATTRITION_ALLOW_EPHEMERAL_DB=1): ready, /health and
#      the pages say the database is not persistent; without the flag: a French refusal.
#   4. /data owned by root: a French message, no traceback.
#   5. External PostgreSQL 16 in a container, with passwords (superuser, owner, app role),
#      PORT=8080 and `--cpus 1`: ready, one worker, Docker's HEALTHCHECK healthy on $PORT;
#      without ATTRITION_DB__APP_PASSWORD: a French refusal at once.
#
# Engine: the running one if `docker info` answers (GitHub runners), else Debian's docker.io
# (installed with apt when missing) started here with its state under $WORK. If the engine
# cannot be installed or started (an environment limit, not a project defect) the script says
# so and exits 0 with "SKIPPED: engine unavailable" (exit 1 with ATTRITION_REQUIRE_ENGINE=1,
# as in the GitHub image job). Any build or check failure exits non-zero.
#
# Base image: the Dockerfile's pinned `FROM ... AS base`, pulled when Docker Hub answers
# (ATTRITION_IMAGE_BASE=registry|local|auto, default auto). Otherwise a stand-in built here:
# a Debian bookworm rootfs (mmdebstrap, from the Debian mirror apt uses) with Debian's Python
# 3.11 in a venv at /usr/local, and the pinned wheels served by a local index on 127.0.0.1.
#
# Settings (environment): WORK (default /tmp/attrition-image-smoke; caches are kept there),
# APP_PORT (7860), EXT_PORT (7861), PYPI_PORT (8765), DEBIAN_MIRROR, ATTRITION_IMAGE_BASE,
# ATTRITION_REQUIRE_ENGINE, ATTRITION_IMAGE_NO_CACHE=1 (build without the layer cache),
# ATTRITION_IMAGE_REPORT (JSON path), DOCKER (the docker CLI to use).
{ # Read whole before it runs: editing the file during a run cannot derail the run.
set -eEuo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
W=${WORK:-/tmp/attrition-image-smoke}
APP_PORT=${APP_PORT:-7860}
EXT_PORT=${EXT_PORT:-7861}
PYPI_PORT=${PYPI_PORT:-8765}
BASE_MODE=${ATTRITION_IMAGE_BASE:-auto}
REPORT=${ATTRITION_IMAGE_REPORT:-$REPO/reports/image-smoke.json}
IMAGE=futurisys-attrition:smoke
LOCAL_BASE=attrition-smoke-base:bookworm
P=attr-smoke                      # prefix of every container and network made here
NET=$P-net
FRAME_ORIGIN=https://huggingface.co
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)
mkdir -p "$W" "$(dirname "$REPORT")"

START=$EPOCHREALTIME
declare -A FIG=()
STATUS=echec
OWN_DOCKERD_PID=""
PYPI_PID=""
DOCKER=""

say() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
fail() { printf '\nÉCHEC : %s\n' "$*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
dk() { "$DOCKER" "$@"; }

write_report() {
  FIG[statut]=$STATUS
  FIG[total_s]=$(since "$START")
  local args=()
  for k in "${!FIG[@]}"; do args+=("$k=${FIG[$k]}"); done
  python3 - "$REPORT" "${args[@]}" <<'PY'
import datetime, json, sys
out, pairs = sys.argv[1], sys.argv[2:]
data = {}
for pair in pairs:
    key, _, value = pair.partition("=")
    try:
        data[key] = int(value) if value.lstrip("-").isdigit() else float(value)
    except ValueError:
        data[key] = value
data["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
with open(out, "w", encoding="utf-8") as fh:
    json.dump(dict(sorted(data.items())), fh, ensure_ascii=False, indent=2)
    fh.write("\n")
PY
}

cleanup() {
  local code=$?
  trap - EXIT
  if [ -n "$DOCKER" ] && dk info >/dev/null 2>&1; then
    for c in $(dk ps -aq --filter "name=^$P-" 2>/dev/null); do dk rm -f "$c" >/dev/null 2>&1 || true; done
    dk network rm "$NET" >/dev/null 2>&1 || true
  fi
  [ -z "$PYPI_PID" ] || kill "$PYPI_PID" 2>/dev/null || true
  if [ -n "$OWN_DOCKERD_PID" ]; then
    kill "$OWN_DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    info "moteur arrêté (dockerd $OWN_DOCKERD_PID)"
  fi
  if [ "$STATUS" != ignore ]; then
    write_report
    info "rapport : $REPORT"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'printf "\nÉCHEC : ligne %s : %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

engine_unavailable() {
  printf '\n%s\n' "############################################################################"
  printf '%s\n' "# Moteur Docker indisponible sur cette machine : $1"
  printf '%s\n' "# (limite de l'environnement, pas un défaut du projet ; rien n'a été testé)"
  printf '%s\n' "############################################################################"
  echo "SKIPPED: engine unavailable"
  STATUS=ignore_moteur_indisponible
  FIG[raison]="$1"
  write_report
  STATUS=ignore
  if [ "${ATTRITION_REQUIRE_ENGINE:-0}" = 1 ]; then
    echo "ATTRITION_REQUIRE_ENGINE=1 : le moteur est exigé ici." >&2
    exit 1
  fi
  exit 0
}

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install \
      -y -qq --no-install-recommends "$@" >"$W/apt.log" 2>&1
}

# --------------------------------------------------------------------------- 1. engine
say "1. moteur Docker"
t=$(now)
USER_DOCKER=${DOCKER:-}
DOCKER=${USER_DOCKER:-$(command -v /usr/bin/docker || command -v docker || true)}
if [ -z "$DOCKER" ] || ! "$DOCKER" info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null || { [ -z "$USER_DOCKER" ] && [ ! -x /usr/bin/docker ]; }; then
    info "installation de docker.io (apt)…"
    apt_install docker.io iptables || engine_unavailable "apt ne peut pas installer docker.io (voir $W/apt.log)"
  fi
  # Debian's CLI: the one in /usr/local/bin on some machines has no buildx, hence no BuildKit.
  [ -n "$USER_DOCKER" ] || DOCKER=/usr/bin/docker
  export DOCKER_HOST=unix://$W/docker.sock
  if ! dk info >/dev/null 2>&1; then
    info "démarrage de dockerd (état dans $W)"
    dockerd --data-root "$W/docker-root" --exec-root "$W/docker-exec" -H "$DOCKER_HOST" \
      --pidfile "$W/dockerd.pid" >"$W/dockerd.log" 2>&1 &
    OWN_DOCKERD_PID=$!
    for _ in $(seq 60); do dk info >/dev/null 2>&1 && break; kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    if ! dk info >/dev/null 2>&1; then
      tail -5 "$W/dockerd.log" | sed 's/^/   dockerd: /'
      engine_unavailable "dockerd ne démarre pas (voir $W/dockerd.log)"
    fi
  fi
fi
FIG[moteur]="dockerd $(dk version --format '{{.Server.Version}}')"
FIG[coeurs]=$(nproc)
FIG[moteur_s]=$(since "$t")
info "${FIG[moteur]} prêt en ${FIG[moteur_s]} s"
# The engine must also run a container (cgroups, namespaces): checked with the first base below.

# --------------------------------------------------------------------------- 2. base image
say "2. image de base"
FROM_REF=$(sed -n 's/^FROM \([^ ]*\) AS base$/\1/p' "$REPO/Dockerfile")
[ -n "$FROM_REF" ] || fail "aucune ligne « FROM … AS base » dans le Dockerfile"
info "Dockerfile : $FROM_REF"
BUILD_FILE=$REPO/Dockerfile
BUILD_NET=()
if [ "$BASE_MODE" = auto ]; then
  if curl -s -m 8 -o /dev/null https://registry-1.docker.io/v2/; then BASE_MODE=registry; else BASE_MODE=local; fi
fi
t=$(now)
if [ "$BASE_MODE" = registry ]; then
  dk pull -q "$FROM_REF" >/dev/null || fail "impossible de tirer $FROM_REF (digest épinglé)"
  FIG[base]="$FROM_REF (registre)"
  BASE_USED=$FROM_REF
else
  info "Docker Hub injoignable : image de remplacement (Debian bookworm + Python 3.11 de Debian)"
  if ! dk image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || apt_install mmdebstrap || fail "mmdebstrap introuvable (apt)"
    mirror=${DEBIAN_MIRROR:-$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
      sed -n -e 's/^URIs:[[:space:]]*\(http[^ ]*\/debian\/\{0,1\}\)\([[:space:]].*\)\{0,1\}$/\1/p' \
        -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\(http[^ ]*\/debian\/\{0,1\}\)[[:space:]].*/\2/p' |
      head -1)}
    [ -n "$mirror" ] || fail "aucun miroir Debian dans les sources d'apt : définissez DEBIAN_MIRROR"
    if [ ! -s "$W/rootfs.tar" ]; then
      info "mmdebstrap bookworm depuis $mirror…"
      mmdebstrap --quiet --variant=minbase \
        --include=python3,python3-venv,ca-certificates,netbase,tzdata \
        --customize-hook='chroot "$1" python3 -m venv /usr/local' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
        bookworm "$W/rootfs.part.tar" "$mirror" || fail "mmdebstrap a échoué"
      mv "$W/rootfs.part.tar" "$W/rootfs.tar"
    fi
    dk import \
      --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change "ENV PIP_INDEX_URL=http://127.0.0.1:$PYPI_PORT/simple/" \
      --change 'CMD ["python3"]' "$W/rootfs.tar" "$LOCAL_BASE" >/dev/null
  fi
  # The pinned reference (tag@sha256:digest) cannot name a local image: the build reads a
  # copy of the Dockerfile whose base line names the stand-in instead (and no `# syntax=`
  # line, which would pull docker/dockerfile:1 from Docker Hub).
  sed -e '1{/^# syntax=/d}' -e "s|^FROM $FROM_REF AS base\$|FROM $LOCAL_BASE AS base|" \
    "$REPO/Dockerfile" >"$W/Dockerfile"
  grep -q "^FROM $LOCAL_BASE AS base\$" "$W/Dockerfile" || fail "substitution de la base impossible"
  BUILD_FILE=$W/Dockerfile
  BUILD_NET=(--network host)
  FIG[base]="remplacement local de $FROM_REF"
  BASE_USED=$LOCAL_BASE

  info "index PyPI local sur 127.0.0.1:$PYPI_PORT (les versions figées de requirements.txt)"
  mkdir -p "$W/wheelhouse"
  python3 -m pip download -q --disable-pip-version-check -r "$REPO/requirements.txt" \
    'setuptools>=69' wheel -d "$W/wheelhouse" >"$W/pip-download.log" 2>&1 ||
    { tail -5 "$W/pip-download.log"; fail "pip download a échoué"; }
  python3 - "$W/wheelhouse" <<'PY'
import html, pathlib, re, sys
root = pathlib.Path(sys.argv[1]); simple = root / "simple"; simple.mkdir(exist_ok=True)
projects: dict[str, list[str]] = {}
for dist in sorted([*root.glob("*.whl"), *root.glob("*.tar.gz")]):
    projects.setdefault(re.sub(r"[-_.]+", "-", dist.name.split("-")[0]).lower(), []).append(dist.name)
for name, files in projects.items():
    (simple / name).mkdir(exist_ok=True)
    links = "".join(f'<a href="../../{html.escape(f)}">{html.escape(f)}</a><br>\n' for f in files)
    (simple / name / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
print(f"   {len(projects)} projets")
PY
  python3 -m http.server "$PYPI_PORT" --bind 127.0.0.1 --directory "$W/wheelhouse" >"$W/pypi.log" 2>&1 &
  PYPI_PID=$!
  for _ in $(seq 20); do curl -s -o /dev/null "http://127.0.0.1:$PYPI_PORT/simple/" && break; sleep 0.5; done
fi
out=$(dk run --rm "$BASE_USED" python3 --version 2>&1) ||
  engine_unavailable "le moteur ne lance pas de conteneur : $out"
FIG[base_s]=$(since "$t")
info "$BASE_USED : $out (${FIG[base_s]} s)"

# --------------------------------------------------------------------------- 3. build
say "3. construction de l'image"
t=$(now)
no_cache=()
[ "${ATTRITION_IMAGE_NO_CACHE:-0}" = 1 ] && no_cache=(--no-cache)
if ! DOCKER_BUILDKIT=1 dk build "${BUILD_NET[@]}" "${no_cache[@]}" -f "$BUILD_FILE" -t "$IMAGE" \
  --label "org.opencontainers.image.version=$VERSION" "$REPO" >"$W/build.log" 2>&1; then
  tail -30 "$W/build.log"
  fail "la construction de l'image a échoué (journal complet : $W/build.log)"
fi
FIG[construction_s]=$(since "$t")
FIG[image_mo]=$(($(dk image inspect "$IMAGE" --format '{{.Size}}') / 1000000))
info "construite en ${FIG[construction_s]} s, ${FIG[image_mo]} Mo ; $(dk image inspect "$IMAGE" \
  --format 'utilisateur={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}}')"
[ "$(dk image inspect "$IMAGE" --format '{{.Config.User}}')" = 1000:1000 ] || fail "l'image ne tourne pas sous l'uid 1000"
[ "$(dk image inspect "$IMAGE" --format '{{index .Config.Entrypoint 0}}')" = /usr/bin/tini ] || fail "pas de tini en ENTRYPOINT"

# --------------------------------------------------------------------------- helpers
SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
AUDIT=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
ADMIN=$(dk run --rm "$IMAGE" python -c 'from attrition.security.keys import generate_key; print(generate_key().full)')
SEED=""
for d in "${ATTRITION_DATA_DIR:-}" "$REPO/../shared/data/technova" "$REPO/data/raw"; do
  if [ -n "$d" ] && [ -f "$d/extrait_sirh.csv" ]; then SEED=$(cd "$d" && pwd); break; fi
done
SEED_MOUNT=()
if [ -n "$SEED" ]; then
  SEED_MOUNT=(-v "$SEED:/data/raw:ro")
  info "extraits fournis depuis $SEED (le Space les télécharge ; GitHub peut être injoignable d'ici)"
fi
SPACE_ENV=(-e "ATTRITION_SECRET_KEY=$SECRET" -e "ATTRITION_AUDIT_KEY=$AUDIT" -e "ATTRITION_ADMIN_KEY=$ADMIN"
  -e "ATTRITION_API__FRAME_ANCESTORS=[\"$FRAME_ORIGIN\"]")

fresh_data() {  # fresh_data DIR: an empty /data for uid 1000, with the extracts when known
  as_root rm -rf "$1"
  mkdir -p "$1/raw"
  [ -z "$SEED" ] || cp "$SEED"/extrait_*.csv "$1/raw/"
  as_root chown -R 1000:1000 "$1"
}
running() { [ "$(dk inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
exit_code() { dk inspect -f '{{.State.ExitCode}}' "$1"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
wait_ready() {  # wait_ready CONTAINER URL: seconds until /ready answers 200 (fails if it dies)
  local t0=$EPOCHREALTIME
  until [ "$(status_of "$2/ready")" = 200 ]; do
    running "$1" || { dk logs --tail 20 "$1" 2>&1 | sed 's/^/   | /'; fail "$1 s'est arrêté avant d'être prêt"; }
    [ "$(since "$t0" | cut -d. -f1)" -lt 600 ] || fail "$1 pas prêt après 600 s"
    sleep 0.5
  done
  since "$t0"
}
wait_exit() {  # wait_exit CONTAINER SECONDS: the container must stop by itself
  for _ in $(seq "$(($2 * 2))"); do running "$1" || return 0; sleep 0.5; done
  fail "$1 tourne encore après $2 s"
}
check() {  # check LABEL EXPECTED_STATUS CURL_ARGS...: prints the status and the start of the body
  local label=$1 want=$2; shift 2
  local got
  got=$(curl -s -D "$W/headers" -o "$W/body" -w '%{http_code}' "$@" || true)
  printf '   %-44s HTTP %s %s\n' "$label" "$got" "$(head -c 100 "$W/body" | tr '\n' ' ')"
  [ "$got" = "$want" ] || fail "$label : HTTP $got au lieu de $want"
}
body_has() { grep -q -- "$1" "$W/body" || fail "réponse sans « $1 »"; }
header_has() { grep -qi -- "$1" "$W/headers" || fail "en-têtes sans « $1 »"; }
header_lacks() { ! grep -qi -- "$1" "$W/headers" || fail "en-tête inattendu « $1 »"; }
pg_log_lines() { as_root sh -c "cat '$1/pgdata/log' 2>/dev/null | wc -l"; }
pg_log_since() { as_root tail -n "+$(($2 + 1))" "$1/pgdata/log"; }
no_crash_recovery() {  # no_crash_recovery DATA LINE: the PostgreSQL log after LINE shows a clean start
  local new
  new=$(pg_log_since "$1" "$2")
  if grep -Eq 'not properly shut down|automatic recovery|crash recovery|interrupted' <<<"$new"; then
    grep -E 'not properly|recovery|interrupted' <<<"$new" | sed 's/^/   | /'
    fail "PostgreSQL a dû récupérer après un arrêt brutal"
  fi
  grep -q 'database system was shut down at' <<<"$new" || fail "pas de trace d'un arrêt propre de PostgreSQL"
  info "PostgreSQL : $(grep -m1 'database system was shut down at' <<<"$new" | sed 's/.*LOG: *//')"
}
timed_stop() {  # timed_stop CONTAINER: docker stop (SIGTERM, then SIGKILL after 10 s); prints seconds
  local t0=$EPOCHREALTIME
  dk stop "$1" >/dev/null
  since "$t0"
}
workers_of() {  # the worker count `attrition serve` announced (its console may wrap lines)
  dk logs "$1" 2>&1 | tr '\n' ' ' | sed -n 's/.*—[[:space:]]*\([0-9][0-9]*\)[[:space:]]*processus.*/\1/p'
}
logs_have() {  # logs_have CONTAINER TEXT: the logs (lines joined) contain TEXT; reads them all,
  # so no early-closed pipe (SIGPIPE under pipefail) can make a present line look absent
  [ "$(dk logs "$1" 2>&1 | tr -s '\n ' '  ' | grep -c -F -- "$2" || true)" -gt 0 ]
}
first_error() {  # the French error line of a refused start (joined: the console wraps lines)
  dk logs "$1" 2>&1 | tr -s '\n ' '  ' | grep -o 'Erreur :.*' | cut -c1-240 || true
}
no_traceback() { ! logs_have "$1" Traceback || fail "trace Python dans les journaux de $1"; }
dk network create "$NET" >/dev/null

# --------------------------------------------------------------------------- 4. Space
say "4. comme le Space : uid 1000, racine en lecture seule, volume /data, port 7860"
D=$W/data-space
fresh_data "$D"
URL=http://127.0.0.1:$APP_PORT
C=$P-space
dk run -d --name "$C" --read-only --tmpfs /tmp -p "127.0.0.1:$APP_PORT:7860" -v "$D:/data" \
  "${SPACE_ENV[@]}" "$IMAGE" >/dev/null
FIG[premier_demarrage_pret_s]=$(wait_ready "$C" "$URL")
info "prêt après ${FIG[premier_demarrage_pret_s]} s (migrations, chargement, entraînement)"
FIG[processus_space]=$(workers_of "$C")
info "processus de l'API : ${FIG[processus_space]} (cœurs de l'hôte : $(nproc), sans quota)"
check "GET /health" 200 "$URL/health"
body_has "\"version\":\"$VERSION\""
body_has '"base_persistante":true'
check "HEAD /health" 200 -I "$URL/health"
check "GET /ready" 200 "$URL/ready"
body_has '"base_persistante":true'
check "GET / (navigateur)" 303 -H 'Accept: text/html' "$URL/"
header_has '^location: /app'
check "GET / (client d'API)" 200 "$URL/"
body_has "\"version\":\"$VERSION\""
check "GET /app/connexion (dans le cadre du Space)" 200 "$URL/app/connexion"
header_has "frame-ancestors $FRAME_ORIGIN"
header_lacks '^x-frame-options'
header_has 'set-cookie:.*samesite=none'
check "GET /health (jamais encadrable)" 200 "$URL/health"
header_has "frame-ancestors 'none'"
header_has '^x-frame-options: DENY'
check "POST /v1/employees/1/predictions" 201 -X POST "$URL/v1/employees/1/predictions" -H "Authorization: Bearer $ADMIN"
body_has '"prediction_id":1'
check "même requête sans clé" 401 -X POST "$URL/v1/employees/1/predictions"

say "5. redémarrage : les données de /data restent, sans récupération de PostgreSQL"
before=$(pg_log_lines "$D")
t=$(now)
dk restart "$C" >/dev/null
wait_ready "$C" "$URL" >/dev/null
FIG[redemarrage_pret_s]=$(since "$t")
info "prêt ${FIG[redemarrage_pret_s]} s après « docker restart »"
check "GET /v1/predictions (conservée)" 200 "$URL/v1/predictions?limite=5" -H "Authorization: Bearer $ADMIN"
body_has '"prediction_id":1'
dk logs "$C" 2>&1 | grep -E 'déjà chargé|déjà enregistré' | tail -2 | sed 's/^/   | /'
no_crash_recovery "$D" "$before"

say "6. arrêt (SIGTERM) propre"
FIG[arret_s]=$(timed_stop "$C")
FIG[arret_code]=$(exit_code "$C")
info "arrêté en ${FIG[arret_s]} s, code de sortie ${FIG[arret_code]} ; PostgreSQL : $(as_root tail -1 "$D/pgdata/log" | sed 's/.*LOG: *//')"
[ "${FIG[arret_code]}" = 0 ] || fail "code de sortie ${FIG[arret_code]} au lieu de 0"
as_root tail -1 "$D/pgdata/log" | grep -q 'database system is shut down' || fail "PostgreSQL non arrêté proprement"
dk rm "$C" >/dev/null

# --------------------------------------------------------------------------- 5. stop at first start
say "7. arrêt pendant le premier démarrage (pendant l'entraînement)"
# The line src/attrition/bootstrap.py prints when the first start begins training (a test in
# tests/ci/test_image_smoke.py keeps the two equal).
TRAINING_MARK='entraînement de la recette retenue'
D2=$W/data-first-stop
fresh_data "$D2"
C=$P-first-stop
dk run -d --name "$C" --read-only --tmpfs /tmp -p "127.0.0.1:$APP_PORT:7860" -v "$D2:/data" \
  "${SPACE_ENV[@]}" "$IMAGE" >/dev/null
for _ in $(seq 1200); do
  logs_have "$C" "$TRAINING_MARK" && break
  running "$C" || fail "$C s'est arrêté avant l'entraînement"
  sleep 0.25
done
logs_have "$C" "$TRAINING_MARK" || fail "l'entraînement n'a pas commencé"
[ "$(status_of "$URL/ready")" != 200 ] || fail "déjà prêt : l'arrêt ne tomberait pas pendant le démarrage"
FIG[arret_premier_demarrage_s]=$(timed_stop "$C")
FIG[arret_premier_demarrage_code]=$(exit_code "$C")
info "arrêté en ${FIG[arret_premier_demarrage_s]} s, code ${FIG[arret_premier_demarrage_code]} ; PostgreSQL : $(as_root tail -1 "$D2/pgdata/log" | sed 's/.*LOG: *//')"
[ "${FIG[arret_premier_demarrage_code]}" = 0 ] || fail "code de sortie ${FIG[arret_premier_demarrage_code]} (137 : tué après 10 s)"
as_root tail -1 "$D2/pgdata/log" | grep -q 'database system is shut down' || fail "PostgreSQL non arrêté proprement"
before=$(pg_log_lines "$D2")
t=$(now)
dk start "$C" >/dev/null
wait_ready "$C" "$URL" >/dev/null
FIG[reprise_pret_s]=$(since "$t")
info "redémarré sur le même /data : prêt en ${FIG[reprise_pret_s]} s"
dk logs "$C" 2>&1 | grep -E "$TRAINING_MARK|déjà chargé" | tail -2 | sed 's/^/   | /'
no_crash_recovery "$D2" "$before"
FIG[recuperation_apres_crash]=non
dk stop "$C" >/dev/null
[ "$(exit_code "$C")" = 0 ] || fail "second arrêt : code $(exit_code "$C")"
dk rm "$C" >/dev/null

# --------------------------------------------------------------------------- 6. demo, refusals
say "8. le « docker run » de démonstration documenté (base éphémère)"
C=$P-demo
t=$(now)
dk run -d --rm --name "$C" -p "127.0.0.1:$APP_PORT:7860" "${SEED_MOUNT[@]}" \
  -e "ATTRITION_SECRET_KEY=$SECRET" -e "ATTRITION_AUDIT_KEY=$AUDIT" -e ATTRITION_ALLOW_EPHEMERAL_DB=1 "$IMAGE" >/dev/null
FIG[demo_pret_s]=$(wait_ready "$C" "$URL")
info "prêt après ${FIG[demo_pret_s]} s"
check "GET /health (démonstration)" 200 "$URL/health"
body_has '"base_persistante":false'
body_has '"avertissement":"Base de données non persistante'
check "GET /app/connexion (bandeau)" 200 "$URL/app/connexion"
body_has "la base de données n'est pas"
dk stop "$C" >/dev/null

C=$P-no-storage
dk run -d --name "$C" "${SEED_MOUNT[@]}" -e "ATTRITION_SECRET_KEY=$SECRET" -e "ATTRITION_AUDIT_KEY=$AUDIT" "$IMAGE" >/dev/null
wait_exit "$C" 120
FIG[sans_stockage_code]=$(exit_code "$C")
info "sans stockage ni drapeau : code ${FIG[sans_stockage_code]} — $(first_error "$C")"
[ "${FIG[sans_stockage_code]}" = 1 ] || fail "attendu : refus (code 1)"
logs_have "$C" 'ATTRITION_ALLOW_EPHEMERAL_DB=1' || fail "le refus ne dit pas quoi faire"
no_traceback "$C"
dk rm "$C" >/dev/null

say "9. /data appartenant à root : message en français, pas de trace"
D3=$W/data-root-owned
as_root rm -rf "$D3"
mkdir -p "$D3"
C=$P-root-data
dk run -d --name "$C" -v "$D3:/data" -e "ATTRITION_SECRET_KEY=$SECRET" -e "ATTRITION_AUDIT_KEY=$AUDIT" "$IMAGE" >/dev/null
wait_exit "$C" 120
FIG[data_root_code]=$(exit_code "$C")
info "code ${FIG[data_root_code]} — $(first_error "$C")"
[ "${FIG[data_root_code]}" = 1 ] || fail "attendu : refus (code 1)"
logs_have "$C" 'chown -R 1000:1000' || fail "le message ne dit pas quoi faire"
no_traceback "$C"
dk rm "$C" >/dev/null

# --------------------------------------------------------------------------- 7. external database
say "10. base PostgreSQL externe (conteneur, mots de passe), PORT=8080, --cpus 1"
PG=$P-pg
SUPER_PW=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
OWNER_PW=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
APP_PW=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
# PostgreSQL 16 from the image itself (the server binaries of the pgserver wheel), as a
# separate server reached over the network with password (SCRAM) authentication only.
dk run -d --name "$PG" --network "$NET" -e "SUPER_PW=$SUPER_PW" "$IMAGE" sh -c '
  set -e
  BIN=$(python -c "import pathlib, pgserver; print(pathlib.Path(pgserver.__file__).parent / \"pginstall\" / \"bin\")" 2>/dev/null)
  printf "%s\n" "$SUPER_PW" >/tmp/pw
  "$BIN/initdb" -D /tmp/pg -U postgres --auth=scram-sha-256 --pwfile=/tmp/pw >/tmp/initdb.log
  rm /tmp/pw
  echo "host all all 0.0.0.0/0 scram-sha-256" >>/tmp/pg/pg_hba.conf
  exec "$BIN/postgres" -D /tmp/pg -c listen_addresses="*" -c unix_socket_directories=/tmp' >/dev/null
for _ in $(seq 60); do logs_have "$PG" 'ready to accept connections' && break; sleep 0.5; done
logs_have "$PG" 'ready to accept connections' || { dk logs "$PG" | tail; fail "PostgreSQL externe pas prêt"; }
dk exec -e "PGPASSWORD=$SUPER_PW" "$PG" sh -c '
  BIN=$(python -c "import pathlib, pgserver; print(pathlib.Path(pgserver.__file__).parent / \"pginstall\" / \"bin\")" 2>/dev/null)
  "$BIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres \
    -c "CREATE ROLE attrition_owner LOGIN CREATEROLE PASSWORD '"'$OWNER_PW'"'" \
    -c "CREATE DATABASE attrition OWNER attrition_owner"' || fail "création du propriétaire"
info "serveur $PG : superutilisateur, propriétaire attrition_owner (CREATEROLE), base attrition"
DB_URL="postgresql+psycopg://attrition_owner:$OWNER_PW@$PG:5432/attrition"
EXT_RUN=(--network "$NET" --read-only --tmpfs /tmp --tmpfs /data:uid=1000,gid=1000,mode=0755
  "${SEED_MOUNT[@]}" -e "DATABASE_URL=$DB_URL" -e "ATTRITION_SECRET_KEY=$SECRET" -e "ATTRITION_AUDIT_KEY=$AUDIT" -e "ATTRITION_ADMIN_KEY=$ADMIN")

C=$P-ext-nopass
dk run -d --name "$C" "${EXT_RUN[@]}" "$IMAGE" >/dev/null
wait_exit "$C" 120
FIG[externe_sans_mot_de_passe_code]=$(exit_code "$C")
info "sans ATTRITION_DB__APP_PASSWORD : code ${FIG[externe_sans_mot_de_passe_code]} — $(first_error "$C")"
[ "${FIG[externe_sans_mot_de_passe_code]}" = 1 ] || fail "attendu : refus (code 1)"
logs_have "$C" 'ATTRITION_DB__APP_PASSWORD requis' || fail "le refus ne nomme pas ATTRITION_DB__APP_PASSWORD"
no_traceback "$C"
dk rm "$C" >/dev/null

C=$P-ext
EXT_URL=http://127.0.0.1:$EXT_PORT
t=$(now)
dk run -d --name "$C" "${EXT_RUN[@]}" -e "ATTRITION_DB__APP_PASSWORD=$APP_PW" -e PORT=8080 \
  -p "127.0.0.1:$EXT_PORT:8080" --cpus 1 --health-interval 2s "$IMAGE" >/dev/null
FIG[externe_pret_s]=$(wait_ready "$C" "$EXT_URL")
info "prêt après ${FIG[externe_pret_s]} s (migrations, rôle applicatif, chargement, entraînement)"
check "GET /ready (base externe)" 200 "$EXT_URL/ready"
body_has "PostgreSQL externe ($PG/attrition)"
check "POST /v1/employees/2/predictions" 201 -X POST "$EXT_URL/v1/employees/2/predictions" -H "Authorization: Bearer $ADMIN"
FIG[processus_cpus_1]=$(workers_of "$C")
info "processus de l'API avec --cpus 1 : ${FIG[processus_cpus_1]}"
[ "${FIG[processus_cpus_1]}" = 1 ] || fail "le quota CPU du conteneur n'est pas suivi"
for _ in $(seq 60); do [ "$(dk inspect -f '{{.State.Health.Status}}' "$C")" = healthy ] && break; sleep 0.5; done
FIG[healthcheck]=$(dk inspect -f '{{.State.Health.Status}}' "$C")
info "HEALTHCHECK de l'image sur PORT=8080 : ${FIG[healthcheck]}"
[ "${FIG[healthcheck]}" = healthy ] || fail "HEALTHCHECK : ${FIG[healthcheck]}"
FIG[externe_arret_s]=$(timed_stop "$C")
[ "$(exit_code "$C")" = 0 ] || fail "arrêt : code $(exit_code "$C")"
info "arrêté en ${FIG[externe_arret_s]} s, code 0"
dk rm "$C" >/dev/null
dk rm -f "$PG" >/dev/null

STATUS=reussi
say "image smoke test réussi en $(since "$START") s"
exit 0
}
