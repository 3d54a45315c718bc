"""Click's and Typer's own words in French (help, usage, errors), for every ``--help``.

Typer ships no French: ``attrition --help`` ended in "Show this message and exit." and a
typo in "No such option". Typer's own module marks its messages for gettext (replaced here by
a lookup in :data:`MESSAGES`); the copy of Click it vendors (``typer._click``) writes plain
English, so its help option, usage prefix and error messages are translated where Typer
shows them (:data:`ERRORS`, patterns on the final message). Anything not listed passes
through unchanged. Called once, by :mod:`attrition.cli`, before any command runs.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

MESSAGES: Final[dict[str, str]] = {
    "Show this message and exit.": "Affiche cette aide et quitte.",
    "Show the version and exit.": "Affiche la version et quitte.",
    "Usage:": "Usage :",
    "Error: {message}": "Erreur : {message}",
    "Try '{command} {option}' for help.": "Voir « {command} {option} » pour l'aide.",
    "Invalid value: {message}": "Valeur invalide : {message}",
    "Invalid value for {param_hint}: {message}": "Valeur invalide pour {param_hint} : {message}",
    "Missing argument": "Argument manquant",
    "Missing option": "Option manquante",
    "Missing parameter": "Paramètre manquant",
    "Missing {param_type}": "{param_type} manquant",
    "Missing parameter: {param_name}": "Paramètre manquant : {param_name}",
    "No such option: {name}": "Option inconnue : {name}",
    "No such option {name!r}.": "Option inconnue {name!r}.",
    "No such command {name!r}.": "Commande inconnue {name!r}.",
    "Missing command.": "Commande manquante.",
    "Did you mean {possibility}?": "Vouliez-vous dire {possibility} ?",
    "(Possible options: {possibilities})": "(options possibles : {possibilities})",
    "Aborted!": "Interrompu.",
    "Aborted.": "Interrompu.",
    "unknown error": "erreur inconnue",
    "Could not open file {filename!r}: {message}": (
        "Impossible d'ouvrir le fichier {filename!r} : {message}"
    ),
    "{value!r} is not a valid {number_type}.": "{value!r} n'est pas un {number_type} valide.",
    "integer": "entier",
    "float": "nombre",
    "{value!r} is not a valid boolean.": "{value!r} n'est pas un booléen valide.",
    "{value!r} is not one of {choices}.": "{value!r} ne fait pas partie de {choices}.",
    "{value!r} is not {choice}.": "{value!r} n'est pas {choice}.",
    "{value!r} does not match the format {format}.": (
        "{value!r} ne correspond pas au format {format}."
    ),
    "{value!r} does not match the formats {formats}.": (
        "{value!r} ne correspond à aucun des formats {formats}."
    ),
    "{name} {filename!r} does not exist.": "{name} {filename!r} n'existe pas.",
    "{name} {filename!r} is a file.": "{name} {filename!r} est un fichier.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} est un dossier.",
    "File": "Fichier",
    "Directory": "Dossier",
    "Path": "Chemin",
    "Options": "Options",
    "Commands": "Commandes",
    "Arguments": "Arguments",
    "default: {default}": "défaut : {default}",
    "required": "obligatoire",
    "env var: {var}": "variable d'environnement : {var}",
    "(dynamic)": "(dynamique)",
    "(deprecated)": "(obsolète)",
    "[default: {}]": "[défaut : {}]",
    "[env var: {}]": "[variable d'environnement : {}]",
    "[required]": "[obligatoire]",
    "(deprecated) ": "(obsolète) ",
    "Error": "Erreur",
    "Try [blue]'{command_path} {help_option}'[/] for help.": (
        "Voir [blue]« {command_path} {help_option} »[/] pour l'aide."
    ),
}

#: Plural messages: English singular -> (French singular, French plural).
PLURALS: Final[dict[str, tuple[str, str]]] = {
    "Got unexpected extra argument ({args})": (
        "Argument en trop : {args}",
        "Arguments en trop : {args}",
    ),
    "Option {name!r} requires an argument.": (
        "L'option {name!r} demande une valeur.",
        "L'option {name!r} demande {nargs} valeurs.",
    ),
    "Option {name!r} does not take a value.": (
        "L'option {name!r} ne prend pas de valeur.",
        "L'option {name!r} ne prend pas de valeur.",
    ),
}

_MODULES: Final = (
    "click.core",
    "click.decorators",
    "click.exceptions",
    "click.formatting",
    "click.parser",
    "click.termui",
    "click.types",
    "click.utils",
    "typer.core",
)
#: Typer's panel titles and hints, computed when typer.rich_utils was imported.
_RICH: Final[dict[str, str]] = {
    "DEPRECATED_STRING": "(deprecated) ",
    "DEFAULT_STRING": "[default: {}]",
    "ENVVAR_STRING": "[env var: {}]",
    "REQUIRED_LONG_STRING": "[required]",
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commands",
    "ERRORS_PANEL_TITLE": "Error",
    "ABORTED_TEXT": "Aborted.",
    "RICH_HELP": "Try [blue]'{command_path} {help_option}'[/] for help.",
}


#: Error messages of the vendored Click, as patterns on the final text.
ERRORS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), french)
    for pattern, french in (
        (r"^No such option: (.+?)(?: Did you mean (.+)\?)?$", "Option inconnue : \\1"),
        (r"^No such command '(.+)'\.$", "Commande inconnue : « \\1 »."),
        (r"^Missing command\.$", "Commande manquante."),
        (r"^Missing option (.+)\.$", "Option obligatoire manquante : \\1."),
        (r"^Missing argument (.+)\.$", "Argument obligatoire manquant : \\1."),
        (r"^Missing parameter: (.+)$", "Paramètre manquant : \\1"),
        (r"^Invalid value for (.+?): (.+)$", "Valeur invalide pour \\1 : \\2"),
        (r"^Invalid value: (.+)$", "Valeur invalide : \\1"),
        (r"^Got unexpected extra argument\(s\) \((.+ .+)\)$", "Arguments en trop : \\1"),
        (r"^Got unexpected extra argument\(s\) \((.+)\)$", "Argument en trop : \\1"),
        (r"^Value (.+) is not a valid (.+)\.$", "Valeur invalide : \\1 (\\2 attendu)."),
        (r"^(.+) is not one of (.+)\.$", "\\1 ne fait pas partie de \\2."),
        (r"^Option '(.+)' requires an argument\.$", "L'option « \\1 » demande une valeur."),
        (r"^Option '(.+)' requires (\d+) arguments\.$", "L'option « \\1 » demande \\2 valeurs."),
        (r"^Option '(.+)' does not take a value\.$", "L'option « \\1 » ne prend pas de valeur."),
    )
)
#: Value errors inside "Invalid value for ...".
VALUES: Final[dict[str, str]] = {
    "Input should be a valid integer, unable to parse string as an integer": (
        "un nombre entier est attendu"
    ),
    "Input should be a valid number, unable to parse string as a number": ("un nombre est attendu"),
    "Input should be a valid boolean, unable to interpret input": "oui ou non est attendu",
}
HELP_OPTION: Final = "Affiche cette aide et quitte."
#: What a group's usage line shows after its options (Typer's default: "COMMAND [ARGS]...").
SUBCOMMAND_METAVAR: Final = "COMMANDE [ARGUMENTS]..."
#: Typer's type labels in help (``<int>``, ``<path>``...), in French.
TYPES: Final[dict[str, str]] = {
    "int": "entier",
    "float": "nombre",
    "str": "texte",
    "bool": "oui|non",
    "path": "chemin",
    "file": "fichier",
    "directory": "dossier",
    "datetime": "date",
    "int range": "entier",
    "float range": "nombre",
}


def translate_error(message: str) -> str:
    """A vendored-Click error message in French (unchanged if it is not a known one)."""
    for english, french in VALUES.items():
        message = message.replace(english, french)
    message = re.sub(r"\(Possible options: (.+)\)$", r"(options possibles : \1)", message)
    message = re.sub(r" Did you mean (.+)\?", r" Vouliez-vous dire \1 ?", message)
    for pattern, french in ERRORS:
        head, sep, tail = message.partition(" (options possibles")
        translated, count = pattern.subn(french, head)
        if count:
            return translated + sep + tail
    return message


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    french = PLURALS.get(singular)
    if french is None:
        return singular if n == 1 else plural
    return french[0] if n == 1 else french[1]


def install() -> None:
    """Make Click and Typer speak French (idempotent)."""
    for name in _MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "_"):
            module._ = gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext  # type: ignore[attr-defined]
    rich_utils = importlib.import_module("typer.rich_utils")
    for attribute, english in _RICH.items():
        setattr(rich_utils, attribute, gettext(english))
    if getattr(rich_utils, "_attrition_french", False):
        return
    rich_utils._attrition_french = True  # type: ignore[attr-defined]

    show_error = rich_utils.rich_format_error

    def french_error(error: Any) -> None:
        english = error.format_message
        error.format_message = lambda: translate_error(english())
        show_error(error)

    rich_utils.rich_format_error = french_error  # type: ignore[attr-defined]

    vendored = importlib.import_module("typer._click.core")
    get_help_option = vendored.Command.get_help_option

    def french_help_option(self: Any, ctx: Any) -> Any:
        option = get_help_option(self, ctx)
        if option is not None:
            option.help = HELP_OPTION
        return option

    vendored.Command.get_help_option = french_help_option
    formatting = importlib.import_module("typer._click.formatting")
    write_usage = formatting.HelpFormatter.write_usage

    def french_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        write_usage(self, prog, args, "Usage : " if prefix is None else prefix)

    formatting.HelpFormatter.write_usage = french_usage
    _french_types(importlib.import_module("typer.core"))


def french_type(label: str) -> str:
    """``<int>`` -> ``<entier>``; list, choice and unknown labels keep their parts' names."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    words = re.split(r"([|,\[\]])", inner)
    return "<" + "".join(TYPES.get(word, word) for word in words) + ">"


def _french_types(core: Any) -> None:
    display_type = core._TyperParameter.display_type
    option_display = core.TyperOption.display_type_rich

    def french_display_type(self: Any, ctx: Any) -> str:
        return french_type(display_type(self, ctx))

    def option_display_type(self: Any, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None  # a flag takes no value: no type to show
        return option_display(self, ctx)

    core._TyperParameter.display_type = french_display_type
    core.TyperOption.display_type_rich = option_display_type
