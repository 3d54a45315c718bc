"""The service behind PgBouncer in transaction mode: with and without prepared statements.

Needs the ``pgbouncer`` binary (``apt-get install pgbouncer``); on 127.0.0.1 only, bounded.
An embedded PostgreSQL is prepared as `make run` would, PgBouncer is put in front of it in
``pool_mode = transaction`` with fewer server connections than the service's pools hold
(so that client connections really share server connections), and one `attrition serve`
(``--workers`` processes) is given PgBouncer as its ``DATABASE_URL``. The same load of
``POST /v1/predictions`` is sent twice: with psycopg's default (statements prepared after
5 executions) and with ``ATTRITION_DB__PREPARED_STATEMENTS=false`` (``prepare_threshold=None``).
Then `attrition audit seal` and `attrition audit verify`, through PgBouncer as well. Prints
one JSON object: answers per status, the two commands' results, and PgBouncer's version.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # bench/run.py: prepare, Service, serve_argv

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def start_pgbouncer(workdir: Path, socket_dir: str, users: dict[str, str], port: int) -> Any:
    conf = workdir / "pgbouncer"
    conf.mkdir()
    (conf / "userlist.txt").write_text("".join(f'"{u}" "{p}"\n' for u, p in users.items()))
    (conf / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={socket_dir}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {conf}/userlist.txt\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        f"logfile = {conf}/pgbouncer.log\n"
    )
    argv = [PGBOUNCER, "-q", str(conf / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: as the embedded server's owner
        owner = Path(socket_dir).owner()
        shutil.chown(conf, owner)
        for f in conf.iterdir():
            shutil.chown(f, owner)
        argv[1:1] = ["-u", owner]
    process = subprocess.Popen(argv)
    time.sleep(1.0)
    return process


def statuses(url: str, key: str, payloads: Path, requests: int, prefix: str) -> dict[str, Any]:
    argv = [
        sys.executable, str(bench.BENCH / "load.py"), "--url", url, "--key", key,
        "--payloads", str(payloads), "--concurrency", "16", "--requests", str(requests),
        "--warmup", "20", "--max-seconds", "40", "--prefix", prefix,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    out = orjson.loads(done.stdout.strip().splitlines()[-1])
    return {k: out[k] for k in ("ok", "errors", "error_kinds", "throughput_rps") if k in out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args()
    version = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True).stdout
    workdir = Path(tempfile.mkdtemp(prefix="attr-pgbouncer-", dir="/tmp"))
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ATTRITION_DATABASE_URL"}
    }
    app_password = secrets.token_urlsafe(16)  # generated per run, never stored
    env.update(
        APP_ENV="dev",
        ATTRITION_PGDATA=str(workdir / "pgdata"),
        ATTRITION_DATA_DIR=str(bench.data_dir()),
        ATTRITION_DB__APP_PASSWORD=app_password,
        ATTRITION_AUDIT_KEY="bench-audit-key-" + os.urandom(16).hex(),
        ATTRITION_AUDIT_CHECKPOINT_DIR=str(workdir / "audit"),
        **bench.LIMITS_ENV,
    )
    os.environ.update({k: env[k] for k in env if k.startswith(("ATTRITION_", "APP_"))})
    from attrition.config import get_settings
    from attrition.db.embedded import role_password

    get_settings.cache_clear()
    settings = get_settings()
    db, _version, key, _payloads = bench.prepare(settings, workdir)
    server = db.embedded
    owner = db.owner_url.username
    port = bench.free_port()
    bouncer = start_pgbouncer(
        workdir,
        server.socket_dir,
        {owner: role_password(server.pgdata, owner), settings.db.app_role: app_password},
        port,
    )
    env.pop("ATTRITION_PGDATA")
    env["DATABASE_URL"] = (
        f"postgresql://{owner}:{role_password(server.pgdata, owner)}@127.0.0.1:{port}/"
        f"{settings.db.name}"
    )
    results: dict[str, Any] = {"pgbouncer": version.splitlines()[0], "pool_mode": "transaction"}
    try:
        for prepared in ("true", "false"):
            api_port = bench.free_port()
            url = f"http://127.0.0.1:{api_port}"
            service = bench.Service(
                f"api-{prepared}",
                bench.serve_argv(api_port, args.workers),
                env | {"ATTRITION_DB__PREPARED_STATEMENTS": prepared},
                workdir / f"serve-{prepared}.log",
            )
            try:
                service.wait_ready(url)
                results[f"prepared_statements={prepared}"] = statuses(
                    url, key, workdir / "payloads.json", args.requests, f"pgb-{prepared}"
                )
            finally:
                service.stop()
            log = (workdir / f"serve-{prepared}.log").read_text(errors="replace")
            results[f"prepared_statements={prepared}"]["log_mentions_already_exists"] = log.count(
                "already exists"
            )
            bench.say(
                f"prepared_statements={prepared}: {results[f'prepared_statements={prepared}']}"
            )
        # The owner's commands through PgBouncer too: seal what is left, verify the chain.
        for command in (["audit", "seal"], ["audit", "verify"]):
            done = subprocess.run(
                [str(bench.BIN / "attrition"), *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            results[" ".join(command)] = {
                "exit_code": done.returncode,
                "output": done.stdout.strip().splitlines()[-3:],
            }
            bench.say(f"attrition {' '.join(command)} : {results[' '.join(command)]}")
    finally:
        bouncer.terminate()
        bouncer.wait(10)
        db.stop()
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
