#!/usr/bin/env python3
"""Deploy the application to a Hugging Face Space (Docker SDK).

Run by the CD workflow (``.github/workflows/cd.yml``), once per GitHub environment::

    python scripts/deploy_space.py --space-id futurisys/attrition-test --environment test

Steps, in an order that never leaves new secrets on old code:

1. check the environment (``HF_TOKEN``, ``ATTRITION_SECRET_KEY``, ``ATTRITION_AUDIT_KEY``;
   ``DATABASE_URL`` with ``ATTRITION_DB__APP_PASSWORD``, and ``ATTRITION_ADMIN_KEY``, are
   optional) and mask
   derived values in the GitHub log;
2. create the Space if it does not exist; stage the application files (an allow-list
   filtered by an ignore list, see :func:`build_file_list`) with ``deploy/space/README.md``
   as the Space's ``README.md``, and upload them with ``HfApi.upload_folder`` (remote files
   no longer shipped are deleted);
3. wait until the Space has *built* that commit. A build error stops here, before any
   secret changes: new secrets never meet old code (roll back by redeploying a tag);
4. only then set the secrets (``add_space_secret``) and variables (``APP_ENV``, the framing
   origin): the Space restarts on the new code with them;
5. wait for it to run again, then poll ``/health`` and ``/ready`` on
   ``https://<owner>-<name>.hf.space`` until both answer 200, and check that ``/health``
   reports the version being deployed (pyproject.toml), or fail after a timeout.

The write token (``HF_TOKEN``) is sent to the application only when the Space is private
(the Hub then requires it); a public Space's app never sees it.

Everything but :func:`deploy` is pure or takes its I/O as arguments (HTTP getter, clock,
sleep), so the module imports and is tested offline; ``huggingface_hub`` is imported only
by :func:`deploy` and is installed (pinned) by the CD job, not by the project.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The Space's README (front-matter: sdk, app_port...), uploaded as README.md.
SPACE_README = Path("deploy/space/README.md")

#: Top-level entries of the repository that the Space needs to build the image.
INCLUDE: tuple[str, ...] = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "requirements.txt",
    "README.md",
    "src",
)

#: Names (any path component) or glob patterns that are never uploaded, wherever they are.
IGNORE_PATTERNS: tuple[str, ...] = (
    ".git",
    ".github",
    ".venv",
    "venv",
    "var",
    "reports",
    "site",
    "data/raw",
    "__pycache__",
    "*.py[cod]",
    "*.egg-info",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".coverage",
    ".coverage.*",
    "htmlcov",
    "node_modules",
    "*.csv",
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    ".DS_Store",
)


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A Space secret, read from the environment variable of the same name."""

    name: str
    required: bool
    description: str


#: Secrets copied from the GitHub environment to the Space.
SPACE_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec("ATTRITION_SECRET_KEY", True, "Secret HMAC des clés d'API et des sessions"),
    SecretSpec(
        "ATTRITION_AUDIT_KEY", True, "Clé des empreintes de la trace d'audit (requise en prod)"
    ),
    SecretSpec("DATABASE_URL", False, "PostgreSQL externe (sinon base embarquée dans /data)"),
    SecretSpec(
        "ATTRITION_DB__APP_PASSWORD", False, "Mot de passe du rôle applicatif (base externe)"
    ),
    SecretSpec("ATTRITION_ADMIN_KEY", False, "Clé d'API administrateur d'amorçage"),
)

#: Origin of the page that frames the app on the Hub (CSP frame-ancestors of the pages).
SPACE_FRAME_ANCESTORS = '["https://huggingface.co"]'

#: Stages of a Space whose current commit has been built (running or not).
BUILT_STAGES = frozenset({"RUNNING", "RUNTIME_ERROR", "APP_STARTING", "RUNNING_APP_STARTING"})

#: Space stages after which waiting longer is pointless.
FAILED_STAGES = frozenset(
    {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "DELETING", "STOPPED", "PAUSED"}
)

#: How long a Space running with an unknown commit must be observed before it is trusted.
UNKNOWN_SHA_GRACE_S = 60.0

_SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class DeployError(RuntimeError):
    """A deployment step failed; the message is for people (French) and holds no secret."""


# --------------------------------------------------------------------------- file list


def is_ignored(relpath: PurePosixPath, patterns: Iterable[str] = IGNORE_PATTERNS) -> bool:
    """Whether ``relpath`` (relative to the repository) matches the ignore list.

    A pattern without ``/`` matches any path component (``.venv`` excludes ``a/.venv/b``);
    a pattern with ``/`` matches the leading components of the path (``data/raw``).
    """
    parts = relpath.parts
    for pattern in patterns:
        if "/" in pattern:
            n = len(PurePosixPath(pattern).parts)
            if len(parts) >= n and fnmatch.fnmatchcase("/".join(parts[:n]), pattern):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def build_file_list(
    root: Path,
    include: Sequence[str] | None = INCLUDE,
    ignore: Iterable[str] = IGNORE_PATTERNS,
) -> list[str]:
    """Sorted POSIX paths, relative to ``root``, of the files to upload to the Space.

    ``include`` is the allow-list of top-level entries (``None``: everything); ``ignore`` is
    applied inside it. Ignored directories are not walked; symbolic links are skipped.
    """
    patterns = tuple(ignore)
    allowed = None if include is None else set(include)
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
        kept = []
        for name in sorted(dirnames):
            rel = rel_dir / name
            if (Path(dirpath) / name).is_symlink() or is_ignored(rel, patterns):
                continue
            if allowed is not None and rel_dir == PurePosixPath(".") and name not in allowed:
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            rel = rel_dir / name
            if (Path(dirpath) / name).is_symlink() or is_ignored(rel, patterns):
                continue
            if allowed is not None and rel.parts[0] not in allowed:
                continue
            files.append(rel.as_posix())
    return sorted(files)


def stage_files(root: Path, files: Iterable[str], dest: Path, space_readme: Path | None) -> None:
    """Copy ``files`` from ``root`` into ``dest``; ``space_readme`` becomes ``README.md``."""
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if space_readme is not None:
        shutil.copy2(space_readme, dest / "README.md")


# --------------------------------------------------------------------------- Space identity


def validate_space_id(space_id: str) -> str:
    """Return ``space_id`` stripped, or raise if it is not ``owner/name``."""
    space_id = space_id.strip()
    if not _SPACE_ID.match(space_id):
        raise DeployError(
            f"Identifiant de Space invalide : {space_id!r} (attendu : « organisation/nom »)."
        )
    return space_id


def space_subdomain(space_id: str) -> str:
    """The ``*.hf.space`` sub-domain: ``owner-name`` in lower case, other characters -> ``-``."""
    owner, name = validate_space_id(space_id).split("/")
    return re.sub(r"[^a-z0-9-]", "-", f"{owner}-{name}".lower())


def space_url(space_id: str) -> str:
    """Public URL of the application of a Space: ``https://owner-name.hf.space``."""
    return f"https://{space_subdomain(space_id)}.hf.space"


# --------------------------------------------------------------------------- secrets


def collect_secrets(
    env: Mapping[str, str], specs: Sequence[SecretSpec] = SPACE_SECRETS
) -> dict[str, str]:
    """The secrets to set on the Space, read from ``env``.

    Empty or missing optional secrets are left out (the Space keeps what it has); a missing
    required one raises, naming the variable but never showing a value.
    """
    missing = [s.name for s in specs if s.required and not env.get(s.name, "").strip()]
    if missing:
        raise DeployError(
            "Secret(s) requis absent(s) de l'environnement GitHub : " + ", ".join(missing)
        )
    found = {s.name: env[s.name] for s in specs if env.get(s.name, "").strip()}
    if "DATABASE_URL" in found and "ATTRITION_DB__APP_PASSWORD" not in found:
        # Without it the application role has no password and /ready never turns 200.
        raise DeployError(
            "ATTRITION_DB__APP_PASSWORD requis avec DATABASE_URL : le rôle applicatif se "
            "connecte à la base externe par mot de passe."
        )
    return found


def project_version(root: Path) -> str:
    """The version in ``root``/pyproject.toml: what ``/health`` must report once deployed."""
    import tomllib

    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def derived_secret_values(secrets: Mapping[str, str]) -> list[str]:
    """Values derived from secrets that GitHub would not mask by itself.

    GitHub masks each ``secrets.*`` value as a whole, not its parts: the password of a
    database URL (raw and percent-decoded) could show up alone in an error message.
    """
    derived: list[str] = []
    for value in secrets.values():
        if "://" not in value:
            continue
        try:
            password = urlsplit(value).password
        except ValueError:
            continue
        if password:
            for candidate in (password, unquote(password)):
                if candidate not in derived:
                    derived.append(candidate)
    return derived


def mask_commands(values: Iterable[str]) -> list[str]:
    """GitHub Actions ``::add-mask::`` workflow commands for ``values`` (single-line only)."""
    return [f"::add-mask::{v}" for v in values if v and "\n" not in v and "\r" not in v]


# --------------------------------------------------------------------------- waiting


Clock = Callable[[], float]
Sleep = Callable[[float], None]
Log = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)


def wait_for_build(
    fetch_runtime: Callable[[], tuple[str, str | None]],
    expected_sha: str | None,
    *,
    timeout_s: float = 1200.0,
    interval_s: float = 10.0,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    log: Log = _print,
    built_only: bool = False,
) -> str:
    """Wait until the Space runs the uploaded commit; return its final stage (``RUNNING``).

    With ``built_only``, any stage of :data:`BUILT_STAGES` reached with ``expected_sha`` is
    enough (the new code may still need the secrets set next); only a build error fails.

    ``fetch_runtime`` returns ``(stage, sha)`` (``sha`` may be ``None`` when the Hub does not
    say). The Space counts as updated when it is ``RUNNING`` with ``expected_sha``, or, when
    no sha is known, once it went through another stage or stayed ``RUNNING`` for
    :data:`UNKNOWN_SHA_GRACE_S`. Error stages fail at once.
    """
    start = clock()
    deadline = start + timeout_s
    saw_transition = False
    last_stage = ""
    while True:
        try:
            stage, sha = fetch_runtime()
        except Exception as exc:  # a transient Hub error must not end the deployment
            stage, sha = "UNKNOWN", None
            log(f"État du Space indisponible ({type(exc).__name__}), nouvel essai.")
        if stage != last_stage:
            log(f"Space : {stage}")
            last_stage = stage
        failed = FAILED_STAGES - BUILT_STAGES if built_only else FAILED_STAGES
        if stage in failed:
            raise DeployError(f"Le Space est en échec ({stage}) : consultez ses journaux.")
        same = bool(expected_sha and sha) and (
            str(sha).startswith(str(expected_sha)) or str(expected_sha).startswith(str(sha))
        )
        if built_only and stage in BUILT_STAGES and same:
            return stage
        if stage == "RUNNING":
            if expected_sha and sha:
                if sha.startswith(expected_sha) or expected_sha.startswith(sha):
                    return stage
            elif saw_transition or clock() - start >= UNKNOWN_SHA_GRACE_S:
                return stage
        elif stage != "UNKNOWN":
            saw_transition = True
        now = clock()
        if now >= deadline:
            raise DeployError(
                f"Le Space n'exécute pas la nouvelle version après {timeout_s:.0f} s "
                f"(dernier état : {last_stage})."
            )
        sleep(min(interval_s, max(deadline - now, 0.0)))


def wait_until_healthy(
    base_url: str,
    get: Callable[[str], int],
    *,
    paths: Sequence[str] = ("/health", "/ready"),
    timeout_s: float = 600.0,
    interval_s: float = 10.0,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    log: Log = _print,
) -> None:
    """Poll each of ``paths`` on ``base_url`` in turn until it answers 200.

    ``get`` returns the HTTP status of a URL (0 when unreachable); an exception from it counts
    as "not yet". The whole sequence shares one deadline; past it, :class:`DeployError`.
    """
    deadline = clock() + timeout_s
    base = base_url.rstrip("/")
    for path in paths:
        url = f"{base}{path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                status = get(url)
            except Exception as exc:  # network errors are expected while the Space starts
                status = 0
                log(f"{path} : erreur {type(exc).__name__} (essai {attempt})")
            else:
                log(f"{path} : HTTP {status} (essai {attempt})")
            if status == 200:
                break
            now = clock()
            if now >= deadline:
                raise DeployError(
                    f"{url} ne répond pas 200 après {timeout_s:.0f} s (dernier statut : {status})."
                )
            sleep(min(interval_s, max(deadline - now, 0.0)))


def http_status(url: str, token: str | None = None, timeout_s: float = 10.0) -> int:
    """HTTP status of a GET on ``url`` (0 when unreachable); ``token`` for private Spaces."""
    if urlsplit(url).scheme not in {"https", "http"}:
        raise ValueError(f"unsupported URL scheme: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "futurisys-attrition-cd"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0


def health_version(url: str, token: str | None = None, timeout_s: float = 10.0) -> str | None:
    """The ``version`` that ``url`` (a ``/health`` URL) reports, or None."""
    import json

    if urlsplit(url).scheme not in {"https", "http"}:
        raise ValueError(f"unsupported URL scheme: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "futurisys-attrition-cd"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError):
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return str(version) if version is not None else None


# --------------------------------------------------------------------------- deployment


def write_github_output(name: str, value: str, env: Mapping[str, str]) -> None:
    """Append ``name=value`` to ``$GITHUB_OUTPUT`` when running in GitHub Actions."""
    path = env.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")


def deploy(args: argparse.Namespace, env: Mapping[str, str], out: TextIO | None = None) -> str:
    """Run the whole deployment; return the application URL."""
    out = sys.stdout if out is None else out
    from huggingface_hub import HfApi  # installed (pinned) by the CD job only

    token = env.get("HF_TOKEN", "").strip()
    if not token:
        raise DeployError("HF_TOKEN absent : définissez ce secret dans l'environnement GitHub.")
    space_id = validate_space_id(args.space_id)
    secrets = collect_secrets(env)
    if env.get("GITHUB_ACTIONS") == "true":
        for line in mask_commands(derived_secret_values(secrets)):
            out.write(line + "\n")
        out.flush()

    root = Path(args.root).resolve()
    readme = root / SPACE_README
    if not readme.is_file():
        raise DeployError(f"{SPACE_README} introuvable.")
    files = build_file_list(root)
    missing = [name for name in ("Dockerfile", "requirements.txt") if name not in files]
    if missing:
        raise DeployError("Fichiers indispensables absents : " + ", ".join(missing))

    api = HfApi(token=token)
    version = project_version(root)
    _print(f"Space {space_id} (environnement {args.environment}, version {version})")
    api.create_repo(space_id, repo_type="space", space_sdk="docker", exist_ok=True)

    # 1. The code first: if its build fails, the Space keeps its old code AND old secrets.
    with tempfile.TemporaryDirectory(prefix="space-") as staging:
        stage_files(root, files, Path(staging), readme)
        _print(f"Envoi de {len(files)} fichiers vers le Space...")
        commit: Any = api.upload_folder(
            repo_id=space_id,
            repo_type="space",
            folder_path=staging,
            commit_message=f"Déploiement {version} ({args.ref}, {args.environment})",
            delete_patterns=["*"],
        )
    expected_sha = getattr(commit, "oid", None)
    _print(f"Commit du Space : {expected_sha or 'inconnu'}")

    def fetch_runtime() -> tuple[str, str | None]:
        runtime = api.get_space_runtime(space_id)
        raw = getattr(runtime, "raw", None) or {}
        return str(runtime.stage), raw.get("sha")

    wait_for_build(
        fetch_runtime,
        expected_sha,
        timeout_s=args.build_timeout,
        interval_s=args.poll_interval,
        built_only=True,
    )
    _print("Image construite : mise à jour des secrets et variables (redémarrage du Space).")

    # 2. Then the secrets and variables: each restarts the Space, on the new code.
    for spec in SPACE_SECRETS:
        if spec.name in secrets:
            api.add_space_secret(
                space_id, spec.name, secrets[spec.name], description=spec.description
            )
            _print(f"Secret {spec.name} : mis à jour")
        else:
            _print(f"Secret {spec.name} : non fourni, inchangé")
    variables = {
        "ATTRITION_API__FRAME_ANCESTORS": env.get("SPACE_FRAME_ANCESTORS", "").strip()
        or SPACE_FRAME_ANCESTORS
    }
    app_env = env.get("SPACE_APP_ENV", "").strip()
    if app_env:
        variables["APP_ENV"] = app_env
    for name, value in variables.items():
        api.add_space_variable(space_id, name, value)
        _print(f"Variable {name} : {value}")

    # 3. Running again (a restart goes through another stage, or the grace period passes).
    wait_for_build(fetch_runtime, None, timeout_s=args.build_timeout, interval_s=args.poll_interval)

    url = args.url or space_url(space_id)
    write_github_output("url", url, env)
    write_github_output("version", version, env)
    # The write token goes to the app only if the Hub requires it (private Space).
    private = bool(getattr(api.space_info(space_id), "private", False))
    app_token = token if private else None
    wait_until_healthy(
        url,
        lambda u: http_status(u, token=app_token),
        timeout_s=args.health_timeout,
        interval_s=args.poll_interval,
    )
    running = health_version(f"{url.rstrip('/')}/health", token=app_token)
    if running != version:
        raise DeployError(
            f"Le Space répond, mais en version {running or 'inconnue'} au lieu de {version}."
        )
    _print(f"Version en service : {running}")
    _print(f"Déploiement réussi : {url}")
    return url


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Déploie l'application sur un Space Hugging Face.")
    parser.add_argument(
        "--space-id",
        default=env.get("HF_SPACE_ID", ""),
        help="organisation/nom du Space (défaut : $HF_SPACE_ID)",
    )
    parser.add_argument("--environment", default="test", help="dev, test ou prod (journal)")
    parser.add_argument(
        "--ref", default=env.get("GITHUB_SHA", "local"), help="version déployée (message de commit)"
    )
    parser.add_argument("--root", default=str(REPO_ROOT), help="racine du dépôt")
    parser.add_argument("--url", default="", help="URL de l'application (défaut : calculée)")
    parser.add_argument("--build-timeout", type=float, default=1200.0, help="secondes")
    parser.add_argument("--health-timeout", type=float, default=600.0, help="secondes")
    parser.add_argument(
        "--poll-interval", type=float, default=10.0, help="secondes entre deux interrogations"
    )
    parser.add_argument(
        "--list-files", action="store_true", help="affiche les fichiers envoyés et s'arrête"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = parse_args(argv, env)
    try:
        if args.list_files:
            for rel in build_file_list(Path(args.root).resolve()):
                _print(rel)
            return 0
        if not args.space_id:
            raise DeployError("Space non précisé : --space-id ou variable HF_SPACE_ID.")
        deploy(args, env)
    except DeployError as exc:
        print(
            f"::error::{exc}" if env.get("GITHUB_ACTIONS") == "true" else str(exc), file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
