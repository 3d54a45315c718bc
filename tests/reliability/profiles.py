"""Employee profiles for property-based tests, drawn from the vocabulary's domains.

:func:`valid_profiles` covers every valid profile: each field over its whole domain, the
seniorities drawn within the career so that the cross-field rules of
``attrition.data.extracts.coherence_errors`` hold (they cannot be written in JSON Schema).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from attrition.data.vocabulary import FEATURES, FEATURES_BY_NAME

#: Fields bounded by another one (the coherence rules), drawn after their bound.
SENIORITY = (
    "annees_experience_totale",
    "annees_dans_l_entreprise",
    "annees_dans_le_poste_actuel",
    "annees_depuis_la_derniere_promotion",
    "annees_sous_responsable_actuel",
)


def _int_value(low: int, high: int) -> st.SearchStrategy[Any]:
    # JSON has one number type: 3087.0 is the integer 3087 (JSON Schema says so, and so do we).
    return st.integers(low, high).flatmap(lambda n: st.sampled_from([n, float(n)]))


def field_values(name: str) -> st.SearchStrategy[Any]:
    """Every valid value of one field, alone (without the cross-field rules)."""
    f = FEATURES_BY_NAME[name]
    if f.kind == "category":
        return st.sampled_from(f.categories)
    if f.kind == "bool":
        return st.booleans()
    assert f.low is not None and f.high is not None
    if f.kind == "int":
        return _int_value(int(f.low), int(f.high))
    return st.one_of(
        st.floats(f.low, f.high, allow_nan=False, allow_infinity=False),
        st.integers(int(f.low), int(f.high)),
    )


@st.composite
def valid_profiles(draw: st.DrawFn) -> dict[str, Any]:
    """A valid, coherent employee profile (any of them)."""
    row = {f.name: draw(field_values(f.name)) for f in FEATURES if f.name not in SENIORITY}
    age = int(row["age"])
    career = draw(_int_value(0, min(56, age - 14)))
    company = draw(_int_value(0, int(career)))
    row["annees_experience_totale"] = career
    row["annees_dans_l_entreprise"] = company
    for name in SENIORITY[2:]:
        row[name] = draw(_int_value(0, int(company)))
    return row


def coherent(row: dict[str, Any]) -> dict[str, Any]:
    """A profile whose fields are each valid, made to obey the cross-field rules too."""
    fixed = dict(row)
    fixed["annees_experience_totale"] = min(fixed["annees_experience_totale"], fixed["age"] - 14)
    fixed["annees_dans_l_entreprise"] = min(
        fixed["annees_dans_l_entreprise"], fixed["annees_experience_totale"]
    )
    for name in SENIORITY[2:]:
        fixed[name] = min(fixed[name], fixed["annees_dans_l_entreprise"])
    return fixed


#: Any JSON value, biased to the shapes that separate a lax parser from a strict one.
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**12), 10**12),
        st.integers(-5, 60_000).map(float),  # 3087.0: an integer for JSON Schema
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        st.integers(0, 100).map(str),  # "34": a string, not a number
        st.sampled_from([c for f in FEATURES for c in f.categories] + ["", " F", "f", "Oui"]),
        st.text(max_size=12),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
