"""Checks of the CI/CD configuration and of the offline parts of scripts/deploy_space.py.

The workflows are parsed with PyYAML (note: YAML 1.1 reads the ``on`` key as ``True``) and
checked for the properties the team relies on: triggers, the PostgreSQL service, minimal
permissions, environments behind tests, and secrets that only ever flow through
``${{ secrets.* }}`` expressions into ``env:``. The deploy script is loaded from its path and
exercised with fake HTTP getters, fake clocks and a fake ``huggingface_hub``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CI_PATH = WORKFLOWS / "ci.yml"
CD_PATH = WORKFLOWS / "cd.yml"

# Built by concatenation so that this file itself holds no token-looking literal.
TOKEN_PATTERNS = [
    re.compile("hf" + r"_[A-Za-z0-9]{30,}"),
    re.compile("gh" + r"[pousr]_[A-Za-z0-9]{36,}"),
    re.compile("github" + r"_pat_[A-Za-z0-9_]{22,}"),
    re.compile("AK" + r"IA[0-9A-Z]{16}"),
    re.compile("-----BEGIN " + r"[A-Z ]*PRIVATE KEY-----"),
]
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)


# --------------------------------------------------------------------------- helpers


def load_workflow(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` mapping (PyYAML turns the bare key ``on`` into ``True``)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict)
    return on


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string value of a parsed YAML document, with its dotted path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def environment_name(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        return str(env.get("name"))
    return None if env is None else str(env)


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load_workflow(CI_PATH)


@pytest.fixture(scope="module")
def cd() -> dict[str, Any]:
    return load_workflow(CD_PATH)


@pytest.fixture(scope="module")
def all_workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load_workflow(p) for p in sorted(WORKFLOWS.glob("*.y*ml"))}


@pytest.fixture(scope="module")
def ds() -> types.ModuleType:
    """scripts/deploy_space.py, imported from its path (scripts/ is not a package)."""
    path = ROOT / "scripts" / "deploy_space.py"
    spec = importlib.util.spec_from_file_location("deploy_space_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


# --------------------------------------------------------------------------- CI workflow


def test_ci_runs_on_push_and_pull_request(ci: dict[str, Any]) -> None:
    on = triggers(ci)
    assert "push" in on
    assert "pull_request" in on
    assert "main" in on["pull_request"]["branches"]
    push_branches = (on["push"] or {}).get("branches", ["**"])
    assert "**" in push_branches or "*" in push_branches


def test_ci_has_the_expected_jobs(ci: dict[str, Any]) -> None:
    assert {"lint", "test", "docs", "pages"} <= set(ci["jobs"])
    run_lines = {name: " ".join(s for _, s in strings(job)) for name, job in ci["jobs"].items()}
    assert "make lint" in run_lines["lint"]
    assert "make test" in run_lines["test"]
    assert "make docs" in run_lines["docs"]


def test_ci_test_job_has_postgres_service_with_health_check(ci: dict[str, Any]) -> None:
    job = ci["jobs"]["test"]
    services = job["services"]
    postgres = [s for s in services.values() if str(s["image"]).startswith("postgres:16")]
    assert postgres, "the test job needs a postgres:16 service"
    options = postgres[0]["options"]
    assert "--health-cmd" in options and "pg_isready" in options
    assert "--health-retries" in options
    env = job["env"]
    for name in ("DATABASE_URL", "TEST_DATABASE_URL"):
        assert env[name].startswith("postgresql+psycopg://")
        assert "localhost:5432" in env[name]


def test_ci_fetches_the_dataset_before_the_tests(ci: dict[str, Any]) -> None:
    steps = [str(step.get("run", "")) for step in ci["jobs"]["test"]["steps"]]
    fetch = next(i for i, run in enumerate(steps) if "attrition data fetch" in run)
    tests = next(i for i, run in enumerate(steps) if "make test" in run)
    assert fetch < tests


def test_ci_publishes_coverage(ci: dict[str, Any]) -> None:
    steps = ci["jobs"]["test"]["steps"]
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads
    paths = uploads[0]["with"]["path"]
    assert "reports/coverage.xml" in paths and "reports/htmlcov" in paths
    assert any("GITHUB_STEP_SUMMARY" in str(s.get("run", "")) for s in steps)


def test_ci_caches_pip_on_requirements_dev(ci: dict[str, Any]) -> None:
    setups = [
        step
        for job in ci["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("actions/setup-python@")
    ]
    assert setups
    for step in setups:
        assert step["with"]["cache"] == "pip"
        assert step["with"]["cache-dependency-path"] == "requirements-dev.txt"


def test_ci_cancels_superseded_runs(ci: dict[str, Any]) -> None:
    assert ci["concurrency"]["cancel-in-progress"] is True
    assert "github.ref" in ci["concurrency"]["group"]


def test_ci_jobs_have_short_timeouts(ci: dict[str, Any]) -> None:
    for name, job in ci["jobs"].items():
        # The image job builds the image and starts it six times (scripts/image_smoke.sh).
        limit = 30 if name == "image" else 15
        assert 0 < int(job["timeout-minutes"]) <= limit, name


def test_pages_job_alone_gets_write_permissions(ci: dict[str, Any]) -> None:
    for name, job in ci["jobs"].items():
        if name == "pages":
            assert job["permissions"] == {"pages": "write", "id-token": "write"}
            assert "refs/heads/main" in job["if"]
            uses = [str(s.get("uses", "")) for s in job["steps"]]
            assert any(u.startswith("actions/deploy-pages@") for u in uses)
        else:
            assert "permissions" not in job, name
    docs_uses = [str(s.get("uses", "")) for s in ci["jobs"]["docs"]["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in docs_uses)


# --------------------------------------------------------------------------- CD workflow


def test_cd_triggers(cd: dict[str, Any]) -> None:
    on = triggers(cd)
    run = on["workflow_run"]
    assert run["workflows"] == ["CI"]
    assert run["types"] == ["completed"]
    assert run["branches"] == ["main"]
    assert on["push"]["tags"] == ["v*.*.*"]
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["ref"]["required"] is True
    assert inputs["environment"]["type"] == "choice"
    assert inputs["environment"]["options"] == ["dev", "test", "prod"]


def test_cd_workflow_name_matches_ci(ci: dict[str, Any], cd: dict[str, Any]) -> None:
    assert ci["name"] in triggers(cd)["workflow_run"]["workflows"]


def test_deploy_jobs_use_test_and_prod_environments(cd: dict[str, Any]) -> None:
    names = {environment_name(job) for job in cd["jobs"].values()}
    assert {"test", "prod"} <= names
    manual = cd["jobs"]["deploy-manual"]
    assert environment_name(manual) == "${{ inputs.environment }}"


def test_every_deploy_job_depends_on_tests(cd: dict[str, Any]) -> None:
    deploy_jobs = {n: j for n, j in cd["jobs"].items() if environment_name(j) is not None}
    assert len(deploy_jobs) >= 2
    test_jobs = {
        name
        for name, job in cd["jobs"].items()
        if any("make test" in s for _, s in strings(job.get("steps", [])))
    }
    assert test_jobs
    for name, job in deploy_jobs.items():
        condition = str(job.get("if", ""))
        after_ci = (
            "github.event.workflow_run.conclusion == 'success'" in condition
            and "workflow_run" in triggers(cd)
        )
        assert after_ci or set(needs(job)) & test_jobs, f"{name} does not wait for tests"


def test_staging_deploys_only_pushes_to_main(cd: dict[str, Any]) -> None:
    condition = cd["jobs"]["deploy-test"]["if"]
    assert "github.event.workflow_run.event == 'push'" in condition
    assert "github.event.workflow_run.head_branch == 'main'" in condition
    checkout = cd["jobs"]["deploy-test"]["steps"][0]
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"


def test_production_only_from_release_tags(cd: dict[str, Any]) -> None:
    prod = cd["jobs"]["deploy-prod"]
    assert "refs/tags/v" in prod["if"]
    guard = " ".join(str(s.get("run", "")) for s in cd["jobs"]["tests"]["steps"])
    assert r"^v[0-9]+\.[0-9]+\.[0-9]+$" in guard
    assert "merge-base --is-ancestor" in guard


def test_deploy_steps_run_the_script_with_environment_secrets(cd: dict[str, Any]) -> None:
    for name, job in cd["jobs"].items():
        if environment_name(job) is None:
            continue
        step = next(s for s in job["steps"] if "deploy_space.py" in str(s.get("run", "")))
        env = step["env"]
        for secret in (
            "HF_TOKEN",
            "DATABASE_URL",
            "ATTRITION_SECRET_KEY",
            "ATTRITION_AUDIT_KEY",
            "ATTRITION_ADMIN_KEY",
            "ATTRITION_DB__APP_PASSWORD",
        ):
            assert env[secret] == "${{ secrets." + secret + " }}", (name, secret)
        assert env["HF_SPACE_ID"] == "${{ vars.HF_SPACE_ID }}"
        assert job["timeout-minutes"] <= 30
        installs = " ".join(str(s.get("run", "")) for s in job["steps"])
        assert "huggingface_hub==" in installs


def test_cd_never_cancels_a_running_deployment(cd: dict[str, Any]) -> None:
    assert cd["concurrency"]["cancel-in-progress"] is False


# --------------------------------------------------------------------------- both workflows


def test_top_level_permissions_are_read_only(all_workflows: dict[str, dict[str, Any]]) -> None:
    assert {"ci.yml", "cd.yml"} <= set(all_workflows)
    for name, workflow in all_workflows.items():
        assert workflow["permissions"] == {"contents": "read"}, name


def test_secrets_only_through_expressions(all_workflows: dict[str, dict[str, Any]]) -> None:
    for name, workflow in all_workflows.items():
        for where, text in strings(workflow):
            outside = EXPRESSION.sub("", text)
            assert "secrets." not in outside, f"{name}{where}: secret outside ${{{{ }}}}"
            if where.endswith(".run"):
                assert "secrets." not in text, f"{name}{where}: pass secrets through env"


def test_no_secret_is_echoed() -> None:
    echo = re.compile(r"(echo|printf)[^\n]*\$\{\{\s*secrets", re.IGNORECASE)
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        assert not echo.search(path.read_text(encoding="utf-8")), path.name


def test_token_patterns_catch_tokens() -> None:
    fake = "hf" + "_" + "aB3" * 12
    assert any(p.search(fake) for p in TOKEN_PATTERNS)
    assert not any(p.search("${{ secrets.HF_TOKEN }}") for p in TOKEN_PATTERNS)


@pytest.mark.parametrize(
    "relpath",
    [
        ".github/workflows/ci.yml",
        ".github/workflows/cd.yml",
        "Dockerfile",
        ".dockerignore",
        "scripts/deploy_space.py",
        "deploy/space/README.md",
    ],
)
def test_no_literal_token(relpath: str) -> None:
    text = (ROOT / relpath).read_text(encoding="utf-8")
    for pattern in TOKEN_PATTERNS:
        assert not pattern.search(text), f"{relpath}: {pattern.pattern}"


def test_actions_are_pinned(all_workflows: dict[str, dict[str, Any]]) -> None:
    for name, workflow in all_workflows.items():
        for job_name, job in workflow["jobs"].items():
            assert "timeout-minutes" in job, f"{name}:{job_name}"
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses is None or uses.startswith("./"):
                    continue
                ref = uses.partition("@")[2]
                assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", ref), f"{name}: {uses}"


# --------------------------------------------------------------------------- Docker, Space


def test_dockerfile_runtime_stage() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^USER 1000(:1000)?$", text, re.MULTILINE)
    assert re.search(r"^EXPOSE 7860$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and "/health" in text and "urllib" in text
    # The server and the health check both follow $PORT (7860 by default): no hard-coded port.
    assert re.search(r"^ENV[^\n]*(\n\s+[^\n]*)*\bPORT=7860\b", text, re.MULTILINE)
    assert "os.environ.get('PORT', '7860')" in text
    assert 'CMD ["attrition", "serve", "--host", "0.0.0.0"]' in text
    assert "--port" not in text.split("CMD [", 1)[1]
    assert "APP_ENV=prod" in text
    assert "ATTRITION_PGDATA=/data/pgdata" in text
    assert "--no-cache-dir" in text
    assert text.count("FROM ") >= 2, "multi-stage build"
    instructions = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    )
    for forbidden in ("ATTRITION_SECRET_KEY", "ATTRITION_ADMIN_KEY", "HF_TOKEN", "DATABASE_URL"):
        assert forbidden not in instructions, f"{forbidden}: no secret in the image"


def test_dockerfile_base_is_a_maintained_tag_pinned_by_digest() -> None:
    """One base line (issue 19, 6): a moving tag Dependabot follows, pinned by its digest."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM (\S+) AS base$", text, re.MULTILINE)
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", bases[0]), bases[0]
    others = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert sorted(others) == sorted([bases[0], "base", "base"]), "stages start from base"
    assert "ARG PYTHON_IMAGE" not in text  # Dependabot does not follow FROM ${ARG}


def test_dockerfile_runs_under_tini() -> None:
    """PID 1 forwards SIGTERM and reaps PostgreSQL's processes (issue 19, 4)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    runtime = text.split("AS runtime", 1)[1]
    assert "apt-get install -y --no-install-recommends tini" in runtime
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in runtime
    assert "ATTRITION_MODEL_DIR" not in text


def test_dependabot_follows_the_base_image_and_the_actions() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert config["version"] == 2
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert ecosystems["docker"]["directory"] == "/"
    assert ecosystems["github-actions"]["directory"] == "/"
    for update in ecosystems.values():
        assert update["schedule"]["interval"] in {"daily", "weekly"}


def test_image_job_builds_and_smoke_tests_the_image(ci: dict[str, Any]) -> None:
    job = ci["jobs"]["image"]
    runs = " ".join(str(step.get("run", "")) for step in job["steps"])
    assert "scripts/image_smoke.sh" in runs or "make image-smoke" in runs
    assert job["env"]["ATTRITION_REQUIRE_ENGINE"] == "1"  # never a silent skip on GitHub
    assert job["env"]["ATTRITION_IMAGE_BASE"] == "registry"  # the real pinned base
    assert job["timeout-minutes"] <= 30


def test_cd_deploys_only_an_image_that_passed_the_smoke_test(cd: dict[str, Any]) -> None:
    """Issue 19, 5: the image is built and smoke-tested before any deployment."""
    image_jobs = {
        name
        for name, job in cd["jobs"].items()
        if any("image_smoke.sh" in s or "make image-smoke" in s for _, s in strings(job))
    }
    assert image_jobs
    for name, job in cd["jobs"].items():
        if environment_name(job) is None:
            continue
        assert set(needs(job)) & image_jobs, f"{name} does not wait for the image job"


def test_cd_passes_the_app_password(cd: dict[str, Any]) -> None:
    """Issue 19, 1: the application role's password reaches the Space."""
    for name, job in cd["jobs"].items():
        if environment_name(job) is None:
            continue
        step = next(s for s in job["steps"] if "deploy_space.py" in str(s.get("run", "")))
        secret = "ATTRITION_DB__APP_PASSWORD"  # pragma: allowlist secret
        assert step["env"][secret] == "${{ secrets." + secret + " }}", name


def test_space_readme_opens_the_pages() -> None:
    text = (ROOT / "deploy" / "space" / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["base_path"] == "/app"


def test_dockerignore_keeps_local_state_out() -> None:
    lines = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "var", "reports", "site", ".env"} <= lines
    assert "**/*.csv" in lines


def test_space_readme_front_matter() -> None:
    text = (ROOT / "deploy" / "space" / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["sdk"] == "docker"
    assert front["app_port"] == 7860
    assert front["pinned"] is False
    for key in ("title", "emoji", "colorFrom", "colorTo"):
        assert front[key]


# --------------------------------------------------------------------------- deploy_space.py


def _touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel, encoding="utf-8")


@pytest.fixture()
def fake_repo(tmp_path: Path) -> Path:
    _touch(
        tmp_path,
        "Dockerfile",
        ".dockerignore",
        "pyproject.toml",
        "requirements.txt",
        "README.md",
        "src/attrition/__init__.py",
        "src/attrition/db/migrations/script.py.mako",
        "src/attrition/__pycache__/__init__.cpython-311.pyc",
        "src/attrition/.venv/lib/x.py",
        ".venv/lib/python3.11/site-packages/x.py",
        "var/pgdata/PG_VERSION",
        ".git/HEAD",
        "reports/coverage.xml",
        "data/raw/extrait_sirh.csv",
        "tests/test_x.py",
        ".env",
        "deploy/space/README.md",
    )
    return tmp_path


def test_file_list_is_the_application(ds: types.ModuleType, fake_repo: Path) -> None:
    files = ds.build_file_list(fake_repo)
    assert files == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "pyproject.toml",
        "requirements.txt",
        "src/attrition/__init__.py",
        "src/attrition/db/migrations/script.py.mako",
    ]


def test_file_list_ignore_list_applies_everywhere(ds: types.ModuleType, fake_repo: Path) -> None:
    files = ds.build_file_list(fake_repo, include=None)
    assert "Dockerfile" in files and "tests/test_x.py" in files
    for prefix in (".venv/", "var/", ".git/", "reports/", "data/raw/", "src/attrition/.venv/"):
        assert not any(f.startswith(prefix) for f in files), prefix
    assert ".env" not in files
    assert not any(f.endswith(".pyc") for f in files)


def test_file_list_of_this_repository(ds: types.ModuleType) -> None:
    files = ds.build_file_list(ROOT)
    assert "Dockerfile" in files and "requirements.txt" in files
    assert any(f.startswith("src/attrition/") for f in files)
    assert not any(f.split("/")[0] in {".venv", "var", ".git", "tests"} for f in files)


def test_is_ignored_patterns(ds: types.ModuleType) -> None:
    from pathlib import PurePosixPath as P

    assert ds.is_ignored(P("a/.venv/b.py"))
    assert ds.is_ignored(P("data/raw/x.txt"))
    assert not ds.is_ignored(P("src/attrition/data/raw.py"))
    assert not ds.is_ignored(P("src/attrition/data/vocabulary.py"))


def test_stage_files_uses_the_space_readme(ds: types.ModuleType, fake_repo: Path) -> None:
    dest = fake_repo / "staging"
    files = ds.build_file_list(fake_repo)
    ds.stage_files(fake_repo, files, dest, fake_repo / "deploy/space/README.md")
    assert (dest / "README.md").read_text(encoding="utf-8") == "deploy/space/README.md"
    assert (dest / "src/attrition/__init__.py").is_file()
    assert not (dest / ".venv").exists()


@pytest.mark.parametrize(
    ("space_id", "url"),
    [
        ("futurisys/attrition-test", "https://futurisys-attrition-test.hf.space"),
        ("futurisys/attrition", "https://futurisys-attrition.hf.space"),
        ("Futurisys/Attrition_Prod.v2", "https://futurisys-attrition-prod-v2.hf.space"),
    ],
)
def test_space_url(ds: types.ModuleType, space_id: str, url: str) -> None:
    assert ds.space_url(space_id) == url


@pytest.mark.parametrize("space_id", ["", "attrition", "a/b/c", "/attrition", "futurisys/"])
def test_space_url_rejects_invalid_ids(ds: types.ModuleType, space_id: str) -> None:
    with pytest.raises(ds.DeployError):
        ds.space_url(space_id)


def test_polling_succeeds_after_a_few_tries(ds: types.ModuleType) -> None:
    clock = FakeClock()
    answers = {"/health": [0, 503, 200], "/ready": [503, 503, 200]}
    calls: list[str] = []

    def get(url: str) -> int:
        calls.append(url)
        path = "/" + url.rsplit("/", 1)[1]
        status = answers[path].pop(0)
        if status == 0:
            raise ConnectionError("not yet")
        return status

    ds.wait_until_healthy(
        "https://futurisys-attrition-test.hf.space/",
        get,
        timeout_s=300,
        interval_s=5,
        clock=clock,
        sleep=clock.sleep,
        log=lambda _m: None,
    )
    assert calls[0] == "https://futurisys-attrition-test.hf.space/health"
    assert calls.count("https://futurisys-attrition-test.hf.space/ready") == 3
    assert len(calls) == 6
    assert clock.sleeps == [5, 5, 5, 5]


def test_polling_fails_after_the_timeout(ds: types.ModuleType) -> None:
    clock = FakeClock()
    start = clock.now
    calls: list[str] = []

    def get(url: str) -> int:
        calls.append(url)
        return 503

    with pytest.raises(ds.DeployError, match="ne répond pas 200"):
        ds.wait_until_healthy(
            "https://x-y.hf.space",
            get,
            timeout_s=60,
            interval_s=7,
            clock=clock,
            sleep=clock.sleep,
            log=lambda _m: None,
        )
    assert clock.now - start == pytest.approx(60)
    assert len(calls) == 10  # t = 0, 7, ..., 56, then 60 (last sleep shortened)
    assert all(u.endswith("/health") for u in calls)


def test_build_wait_ignores_the_old_running_version(ds: types.ModuleType) -> None:
    clock = FakeClock()
    states = [("RUNNING", "old"), ("RUNNING_BUILDING", "old"), ("RUNNING", "new123")]
    stage = ds.wait_for_build(
        lambda: states.pop(0),
        "new123",
        timeout_s=600,
        interval_s=10,
        clock=clock,
        sleep=clock.sleep,
        log=lambda _m: None,
    )
    assert stage == "RUNNING"
    assert not states


def test_build_wait_fails_fast_on_build_error(ds: types.ModuleType) -> None:
    clock = FakeClock()
    states = [("BUILDING", None), ("BUILD_ERROR", None)]
    with pytest.raises(ds.DeployError, match="BUILD_ERROR"):
        ds.wait_for_build(
            lambda: states.pop(0),
            "abc",
            clock=clock,
            sleep=clock.sleep,
            log=lambda _m: None,
        )
    assert clock.sleeps == [10.0]


def test_build_wait_times_out(ds: types.ModuleType) -> None:
    clock = FakeClock()
    with pytest.raises(ds.DeployError, match="nouvelle version"):
        ds.wait_for_build(
            lambda: ("BUILDING", None),
            "abc",
            timeout_s=100,
            interval_s=30,
            clock=clock,
            sleep=clock.sleep,
            log=lambda _m: None,
        )
    assert sum(clock.sleeps) == pytest.approx(100)


def test_build_wait_without_sha_needs_a_transition_or_grace(ds: types.ModuleType) -> None:
    clock = FakeClock()
    ds.wait_for_build(
        lambda: ("RUNNING", None),
        None,
        timeout_s=600,
        interval_s=20,
        clock=clock,
        sleep=clock.sleep,
        log=lambda _m: None,
    )
    assert sum(clock.sleeps) == pytest.approx(ds.UNKNOWN_SHA_GRACE_S)

    clock = FakeClock()
    states = [("APP_STARTING", None), ("RUNNING", None)]
    ds.wait_for_build(
        lambda: states.pop(0), None, clock=clock, sleep=clock.sleep, log=lambda _m: None
    )
    assert clock.sleeps == [10.0]


def test_build_wait_survives_hub_errors(ds: types.ModuleType) -> None:
    clock = FakeClock()
    answers: list[Any] = [OSError("hub down"), ("RUNNING", "abc")]

    def fetch() -> tuple[str, str | None]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert ds.wait_for_build(fetch, "abc", clock=clock, sleep=clock.sleep, log=lambda _m: None)


def test_collect_secrets(ds: types.ModuleType) -> None:
    value, audit = "k" * 40, "a" * 40
    env = {"ATTRITION_SECRET_KEY": value, "ATTRITION_AUDIT_KEY": audit, "DATABASE_URL": "",
           "OTHER": "x"}  # fmt: skip
    assert ds.collect_secrets(env) == {"ATTRITION_SECRET_KEY": value, "ATTRITION_AUDIT_KEY": audit}
    with pytest.raises(ds.DeployError) as excinfo:
        ds.collect_secrets({"ATTRITION_ADMIN_KEY": "admin-value"})
    assert "ATTRITION_SECRET_KEY" in str(excinfo.value)
    assert "ATTRITION_AUDIT_KEY" in str(excinfo.value)
    assert "admin-value" not in str(excinfo.value)


def test_masks_cover_parts_of_database_urls(ds: types.ModuleType) -> None:
    secrets = {
        "DATABASE_URL": "postgresql://app:p%40ss@db:5432/x",  # pragma: allowlist secret
        "ATTRITION_SECRET_KEY": "k" * 40,
    }
    derived = ds.derived_secret_values(secrets)
    assert derived == ["p%40ss", "p@ss"]
    assert ds.mask_commands(derived) == ["::add-mask::p%40ss", "::add-mask::p@ss"]
    assert ds.mask_commands(["", "a\nb"]) == []


def test_write_github_output(ds: types.ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "output"
    ds.write_github_output("url", "https://a-b.hf.space", {"GITHUB_OUTPUT": str(out)})
    ds.write_github_output("url", "ignored", {})
    assert out.read_text(encoding="utf-8") == "url=https://a-b.hf.space\n"


def test_main_lists_files_and_requires_a_space(
    ds: types.ModuleType, fake_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ds.main(["--list-files", "--root", str(fake_repo)], env={}) == 0
    assert "Dockerfile" in capsys.readouterr().out.splitlines()
    assert ds.main(["--root", str(fake_repo)], env={"GITHUB_ACTIONS": "true"}) == 1
    assert capsys.readouterr().err.startswith("::error::")


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi: records calls, never touches the network.

    A secret or variable update restarts the Space: the next runtime poll says so once.
    """

    instances: ClassVar[list[FakeHfApi]] = []
    private: ClassVar[bool] = False

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.calls: list[tuple[str, Any]] = []
        self.uploaded: list[str] = []
        self.restarting = False
        FakeHfApi.instances.append(self)

    def create_repo(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_repo", (repo_id, kwargs)))

    def add_space_secret(self, repo_id: str, key: str, value: str, **kwargs: Any) -> None:
        self.calls.append(("add_space_secret", (repo_id, key, value)))
        self.restarting = True

    def add_space_variable(self, repo_id: str, key: str, value: str, **kwargs: Any) -> None:
        self.calls.append(("add_space_variable", (repo_id, key, value)))
        self.restarting = True

    def upload_folder(self, **kwargs: Any) -> Any:
        folder = Path(kwargs["folder_path"])
        self.uploaded = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        self.readme = (folder / "README.md").read_text(encoding="utf-8")
        self.calls.append(("upload_folder", kwargs))
        return types.SimpleNamespace(oid="f00d")

    def get_space_runtime(self, repo_id: str) -> Any:
        self.calls.append(("get_space_runtime", repo_id))
        if self.restarting:
            self.restarting = False
            return types.SimpleNamespace(stage="APP_STARTING", raw={"sha": "f00d"})
        return types.SimpleNamespace(stage="RUNNING", raw={"sha": "f00d"})

    def space_info(self, repo_id: str) -> Any:
        return types.SimpleNamespace(private=FakeHfApi.private)


def _deploy_env(fake_repo: Path) -> dict[str, str]:
    (fake_repo / "pyproject.toml").write_text('[project]\nversion = "9.8.7"\n', encoding="utf-8")
    return {
        "HF_TOKEN": "hf" + "_" + "T" * 34,
        "ATTRITION_SECRET_KEY": "s" * 40,
        "ATTRITION_AUDIT_KEY": "u" * 40,
        "DATABASE_URL": "postgresql://app:pw0rd@db:5432/attrition",  # pragma: allowlist secret
        "ATTRITION_DB__APP_PASSWORD": "app-pw-" + "x" * 20,  # pragma: allowlist secret
        "SPACE_APP_ENV": "prod",
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(fake_repo / "gh_output"),
    }


@pytest.fixture()
def fake_hub(ds: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """A fake huggingface_hub; the app's answers are faked too. Returns the probes made."""
    fake = types.ModuleType("huggingface_hub")
    fake.HfApi = FakeHfApi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.setattr(FakeHfApi, "private", False)
    probed: list[tuple[str, str | None]] = []

    def fake_status(url: str, token: str | None = None) -> int:
        probed.append((url, token))
        return 200

    def fake_version(url: str, token: str | None = None) -> str:
        probed.append((url, token))
        return "9.8.7"

    monkeypatch.setattr(ds, "http_status", fake_status)
    monkeypatch.setattr(ds, "health_version", fake_version)
    FakeHfApi.instances.clear()
    return probed


DEPLOY_ARGS = ["--space-id", "futurisys/attrition-test", "--ref", "v1.2.3", "--poll-interval", "0"]


def test_deploy_with_a_fake_hub(
    ds: types.ModuleType,
    fake_repo: Path,
    fake_hub: list[tuple[str, str | None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = _deploy_env(fake_repo)
    code = ds.main([*DEPLOY_ARGS, "--root", str(fake_repo)], env=env)
    assert code == 0
    api = FakeHfApi.instances[0]
    assert api.token == env["HF_TOKEN"]
    secrets_set = {args[1] for kind, args in api.calls if kind == "add_space_secret"}
    assert secrets_set == {
        "ATTRITION_SECRET_KEY",
        "ATTRITION_AUDIT_KEY",
        "DATABASE_URL",
        "ATTRITION_DB__APP_PASSWORD",
    }
    variables = {args[1]: args[2] for kind, args in api.calls if kind == "add_space_variable"}
    assert variables == {
        "APP_ENV": "prod",
        "ATTRITION_API__FRAME_ANCESTORS": '["https://huggingface.co"]',
    }
    upload = dict(api.calls)["upload_folder"]
    assert upload["repo_type"] == "space" and upload["repo_id"] == "futurisys/attrition-test"
    assert "v1.2.3" in upload["commit_message"] and "9.8.7" in upload["commit_message"]
    assert api.readme == "deploy/space/README.md"
    assert "Dockerfile" in api.uploaded and ".env" not in api.uploaded
    assert [url for url, _ in fake_hub] == [
        "https://futurisys-attrition-test.hf.space/health",
        "https://futurisys-attrition-test.hf.space/ready",
        "https://futurisys-attrition-test.hf.space/health",
    ]
    output = (fake_repo / "gh_output").read_text(encoding="utf-8")
    assert output == "url=https://futurisys-attrition-test.hf.space\nversion=9.8.7\n"
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert env["HF_TOKEN"] not in printed and env["ATTRITION_SECRET_KEY"] not in printed
    assert env["ATTRITION_DB__APP_PASSWORD"] not in printed
    assert "::add-mask::pw0rd" in printed
    assert "Version en service : 9.8.7" in printed


def test_deploy_uploads_the_code_before_the_secrets(
    ds: types.ModuleType, fake_repo: Path, fake_hub: list[tuple[str, str | None]]
) -> None:
    """A failed build must leave the old code with the old secrets (issue 19, 5)."""
    assert ds.main([*DEPLOY_ARGS, "--root", str(fake_repo)], env=_deploy_env(fake_repo)) == 0
    kinds = [kind for kind, _ in FakeHfApi.instances[0].calls]
    first_secret = kinds.index("add_space_secret")
    assert kinds.index("upload_folder") < first_secret
    assert "get_space_runtime" in kinds[kinds.index("upload_folder") : first_secret]
    assert kinds.index("add_space_variable") > kinds.index("upload_folder")


def test_a_build_error_leaves_the_secrets_alone(
    ds: types.ModuleType,
    fake_repo: Path,
    fake_hub: list[tuple[str, str | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        FakeHfApi,
        "get_space_runtime",
        lambda self, repo_id: types.SimpleNamespace(stage="BUILD_ERROR", raw={"sha": "f00d"}),
    )
    assert ds.main([*DEPLOY_ARGS, "--root", str(fake_repo)], env=_deploy_env(fake_repo)) == 1
    kinds = [kind for kind, _ in FakeHfApi.instances[0].calls]
    assert "upload_folder" in kinds
    assert "add_space_secret" not in kinds and "add_space_variable" not in kinds


def test_write_token_reaches_the_app_only_for_a_private_space(
    ds: types.ModuleType,
    fake_repo: Path,
    fake_hub: list[tuple[str, str | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _deploy_env(fake_repo)
    assert ds.main([*DEPLOY_ARGS, "--root", str(fake_repo)], env=env) == 0
    assert {token for _, token in fake_hub} == {None}
    fake_hub.clear()
    monkeypatch.setattr(FakeHfApi, "private", True)
    assert ds.main([*DEPLOY_ARGS, "--root", str(fake_repo)], env=env) == 0
    assert {token for _, token in fake_hub} == {env["HF_TOKEN"]}


def test_deploy_fails_when_another_version_answers(
    ds: types.ModuleType,
    fake_repo: Path,
    fake_hub: list[tuple[str, str | None]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(ds, "health_version", lambda url, token=None: "0.1.0")
    assert ds.main([*DEPLOY_ARGS, "--root", str(fake_repo)], env=_deploy_env(fake_repo)) == 1
    assert "version 0.1.0 au lieu de 9.8.7" in capsys.readouterr().err


def test_database_url_needs_the_app_password(ds: types.ModuleType) -> None:
    """Without it the app role had no password and /ready stayed 503 (issue 19, 1)."""
    env = {
        "ATTRITION_SECRET_KEY": "s" * 40,
        "ATTRITION_AUDIT_KEY": "u" * 40,
        "DATABASE_URL": "postgresql://o:p@db/a",
    }
    with pytest.raises(ds.DeployError, match="ATTRITION_DB__APP_PASSWORD requis"):
        ds.collect_secrets(env)
    env["ATTRITION_DB__APP_PASSWORD"] = "x" * 24
    assert set(ds.collect_secrets(env)) == {
        "ATTRITION_SECRET_KEY",
        "ATTRITION_AUDIT_KEY",
        "DATABASE_URL",
        "ATTRITION_DB__APP_PASSWORD",
    }


def test_health_version_reads_a_local_server(ds: types.ModuleType) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"statut":"ok","version":"1.2.3"}' if self.path == "/health" else b"[]"
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert ds.health_version(f"{base}/health", timeout_s=5) == "1.2.3"
        assert ds.health_version(f"{base}/other", timeout_s=5) is None
    finally:
        server.shutdown()
        server.server_close()
    assert ds.health_version(base + "/health", timeout_s=1) is None


def test_deploy_refuses_without_token(
    ds: types.ModuleType, fake_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub = types.ModuleType("huggingface_hub")
    fake_hub.HfApi = FakeHfApi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake_hub)
    env = {"ATTRITION_SECRET_KEY": "s" * 40}
    assert ds.main(["--space-id", "a/b", "--root", str(fake_repo)], env=env) == 1


def test_http_status_against_a_local_server(ds: types.ModuleType) -> None:
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert ds.http_status(f"{base}/health", token="tok", timeout_s=5) == 200
        assert ds.http_status(f"{base}/ready", timeout_s=5) == 503
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["Bearer tok", None]
    assert ds.http_status(base + "/health", timeout_s=1) == 0  # server gone
    with pytest.raises(ValueError):
        ds.http_status("file:///etc/passwd")
