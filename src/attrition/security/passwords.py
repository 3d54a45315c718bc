"""Passwords of people: the strength rule, Argon2id hashing (pwdlib), one-time passwords.

The rule follows the CNIL's recommendation on passwords (délibération n° 2022-100), case of
a password used alone: about 80 bits of entropy, i.e. at least 12 characters of the four
kinds (lower case, upper case, digits, other characters), 14 of three kinds, 16 of two kinds
or 20 characters (a passphrase). Hashing is Argon2id through ``pwdlib`` (argon2-cffi), with
OWASP's parameters; a hash made with other parameters is upgraded at the next sign-in.
"""

from __future__ import annotations

import secrets
import string
from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from attrition.errors import FieldError, ValidationError

#: Argon2id parameters (OWASP Password Storage Cheat Sheet: 19 MiB, 2 passes, 1 lane).
ARGON2_MEMORY_KIB = 19_456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

#: Shortest password accepted for each number of kinds of characters used (CNIL, 80 bits).
MIN_LENGTH_BY_KINDS = {4: 12, 3: 14, 2: 16, 1: 20}
#: Longest password accepted (bounds the hashing work an anonymous request can ask for).
MAX_LENGTH = 128
MIN_DISTINCT = 6

RULE = (
    "au moins 12 caractères mêlant minuscules, majuscules, chiffres et caractères spéciaux, "
    "ou 14 caractères de trois de ces types, 16 de deux types, ou une phrase de passe de "
    "20 caractères"
)


def kinds(password: str) -> int:
    """How many of the four kinds of characters ``password`` uses."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def check_strength(password: str, login: str = "", field: str = "nouveau_mot_de_passe") -> None:
    """Refuse, in French and naming ``field``, a password weaker than the rule."""
    problem = None
    if len(password) > MAX_LENGTH:
        problem = f"mot de passe trop long (au plus {MAX_LENGTH} caractères)"
    elif len(password) < MIN_LENGTH_BY_KINDS.get(kinds(password), 20) or password.isdigit():
        problem = f"mot de passe trop faible : {RULE} (recommandation CNIL)"
    elif len(set(password)) < MIN_DISTINCT:
        problem = f"mot de passe trop répétitif : au moins {MIN_DISTINCT} caractères différents"
    elif len(login) >= 3 and login.lower() in password.lower():
        problem = "le mot de passe ne doit pas contenir l'identifiant"
    if problem is not None:
        raise ValidationError(
            f"Mot de passe refusé : {problem}.", errors=[FieldError(field, problem)]
        )


_ONE_TIME_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0OoIl1")


def one_time_password() -> str:
    """A random password to give once to a person, who must change it at first sign-in.

    Four groups of five characters joined by dashes (about 110 bits), easy to read aloud.
    """
    while True:
        groups = ["".join(secrets.choice(_ONE_TIME_ALPHABET) for _ in range(5)) for _ in range(4)]
        candidate = "-".join(groups)
        if kinds(candidate) == 4:
            return candidate


@lru_cache(maxsize=1)
def hasher() -> PasswordHash:
    """The Argon2id hasher (built on first use, not at import)."""
    return PasswordHash(
        (
            Argon2Hasher(
                time_cost=ARGON2_TIME_COST,
                memory_cost=ARGON2_MEMORY_KIB,
                parallelism=ARGON2_PARALLELISM,
            ),
        )
    )


def hash_password(password: str) -> str:
    """The PHC string ``$argon2id$v=19$m=…,t=…,p=…$salt$hash`` (random salt per password)."""
    return hasher().hash(password)


def verify_password(password: str, stored: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored``, and a new hash when the parameters changed.

    argon2-cffi compares the digests in constant time.
    """
    try:
        return hasher().verify_and_update(password, stored)
    except Exception:  # an unreadable stored hash never signs anyone in
        return False, None


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against when the login is unknown, so both cases take as long."""
    return hash_password(secrets.token_urlsafe(24))
