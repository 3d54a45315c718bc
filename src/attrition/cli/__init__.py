"""The ``attrition`` command line: one Typer app for every stage of the service.

``db`` (create, load, url, shell, schema-sql, erd), ``data`` (fetch, check), ``train``,
``model`` (list, show, activate, evaluate, report), ``keys`` (create, list, revoke),
``users`` (create, list, reset, disable, enable, sessions, end-session),
``predict``, ``predictions`` (list, export), ``audit`` (seal, verify), ``rgpd`` (export,
purge), ``monitor`` (drift, performance), ``outcomes`` (record, import), ``openapi`` and
``serve``: one module per group, assembled here.
Errors of the domain are printed as one French line and exit with status 1; no traceback for
a user mistake. Each module imports its heavy dependencies inside its commands, so that
``attrition --help`` stays fast.
"""

from __future__ import annotations

import typer

from attrition.cli import french
from attrition.cli.audit import audit_app, rgpd_app
from attrition.cli.data import data_app
from attrition.cli.db import db_app
from attrition.cli.keys import keys_app
from attrition.cli.model import model_app, train_command
from attrition.cli.monitor import monitor_app
from attrition.cli.outcomes import outcomes_app
from attrition.cli.predict import predict_command, predictions_app
from attrition.cli.serve import openapi_command, serve
from attrition.cli.users import users_app

french.install()
app = typer.Typer(
    help="Service de prédiction de l'attrition (Futurisys). Chaque commande a son --help.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,  # its options are described in English by Typer
    subcommand_metavar=french.SUBCOMMAND_METAVAR,
)
app.command("train")(train_command)
app.command("openapi")(openapi_command)
app.command("predict")(predict_command)
app.command("serve")(serve)
for name, group in (
    ("db", db_app),
    ("data", data_app),
    ("model", model_app),
    ("keys", keys_app),
    ("users", users_app),
    ("predictions", predictions_app),
    ("audit", audit_app),
    ("rgpd", rgpd_app),
    ("monitor", monitor_app),
    ("outcomes", outcomes_app),
):
    app.add_typer(group, name=name, subcommand_metavar=french.SUBCOMMAND_METAVAR)


def main() -> None:
    app()


__all__ = ["app", "main"]
