"""Render the benchmark results: bench/results/latest.md, docs/performance.md and the plot.

Every figure of those pages comes from one results file written by bench/run.py, so that no
number is typed by hand. ``python bench/report.py [RESULTS.json]`` re-renders them (by
default from the newest file of bench/results/).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "img" / "performance" / "latence.png"
LATEST = RESULTS / "latest.md"
#: What each change of the prediction path bought, measured by bench/inprocess.py (A/B).
GAINS = ROOT / "bench" / "gains.json"

#: The client's targets, on this machine (2 cores shared by service, database and load).
TARGETS = {
    "c1_p50_ms": 3.0,
    "c32_recorded_rps": 1000.0,
    "c32_p99_ms": 50.0,
    "batch_ms": 150.0,
    "ratio": 5.0,
    "ready_s": 3.0,
}

#: Targets relative to the floor measured in the same run (issue 20). Absolute figures do not
#: carry between machines; ratios measured side by side in one run do.
FLOOR_TARGETS = {
    "top_recorded_share": 0.30,  # recorded predictions at the top level, share of the floor
    "top_recorded_goal": 0.50,
    "one_throughput_share": 0.20,  # throughput at concurrency 1, share of the floor's
    "top_p99_factor": 3.0,  # p99 at the top level, at most this many times the floor's
    "batch_factor": 10.0,  # batch rows/s over single-prediction rows/s (concurrency 1)
}

# Profile categories: a sample goes to the first whose marker is on its stack.
CATEGORIES = (
    ("_seal_audit", "Scellement de la trace d'audit (tâche de fond)"),
    ("GroupCommitWriter", "Écriture groupée dans PostgreSQL (writer)"),
    ("PredictionService._score", "Calcul du score et de l'explication"),
    ("Authenticator.authenticate", "Authentification par clé"),
    ("current_client", "Authentification par clé"),
    ("request_body_to_args", "Validation du corps (Pydantic)"),
    ("_plain (attrition/api/lane.py", "Validation du corps (Pydantic)"),
    ("create_prediction", "Route de prédiction (réponse, reste)"),
    ("predict_one", "Route de prédiction (réponse, reste)"),
    ("run_asgi", "HTTP, routage FastAPI et middlewares"),
    ("", "Boucle d'événements, réseau et divers"),
)


# ---- profile --------------------------------------------------------------------------------


def summarise_profile(raw: str, *, top: int = 25) -> dict[str, Any]:
    """Digest py-spy's raw (collapsed) stacks of the event-loop thread of one worker."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "Runner.run" not in stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        for marker, label in CATEGORIES:
            if marker in stack:
                categories[label] += n
                break
    share = (lambda n: 100.0 * n / total) if total else (lambda n: 0.0)
    interesting = [
        (f, n)
        for f, n in inclusive.most_common()
        if not re.search(
            r"multiprocessing|uvicorn/(_subprocess|server|_compat|main)|<module>|"
            r"asyncio/runners|typer|click|attrition/cli",
            f,
        )
    ]
    return {
        "samples": total,
        "categories": {label: share(categories[label]) for _, label in CATEGORIES},
        "inclusive": [[f, share(n)] for f, n in interesting[:top]],
        "self": [[f, share(n)] for f, n in own.most_common(top)],
    }


# ---- figures --------------------------------------------------------------------------------


def measured_at(path: Path) -> tuple[str, str]:
    """When a results file was measured (its ``date``): a checkout gives every file one mtime."""
    return str(orjson.loads(path.read_bytes()).get("date", "")), path.name


def latest_results() -> Path:
    files = sorted(
        (p for p in RESULTS.glob("*.json") if not p.name.startswith("scale-")), key=measured_at
    )
    if not files:
        raise SystemExit("Aucun résultat dans bench/results : lancez `make bench`.")
    return files[-1]


def fr(value: float | None, digits: int = 1) -> str:
    """A number the French way: 1 234,5."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}".replace(",", " ").replace(".", ",")
    return text


def per_request_ms(run: dict[str, Any], key: str) -> float | None:
    ok = run.get("ok") or 0
    return run[key] / ok * 1000 if ok and key in run else None


def derived(r: dict[str, Any]) -> dict[str, Any]:
    """Targets, ratios and the facts the commentary quotes, computed from the results."""
    load = r.get("load", {})
    service, baseline = load.get("service", {}), load.get("baseline", {})
    levels = sorted(int(c) for c in service)
    top = str(max(levels)) if levels else None
    one = str(min(levels)) if levels else None
    ratios = {}
    for c in levels:
        s, b = service[str(c)], baseline.get(str(c))
        if b and b["throughput_rps"] > 0:
            ratios[str(c)] = {
                "throughput": s["throughput_rps"] / b["throughput_rps"],
                "p50": b["latency_ms"]["p50"] / s["latency_ms"]["p50"],
                "p99": b["latency_ms"]["p99"] / s["latency_ms"]["p99"],
            }
    lost = sum(x["lost"] + x["orphans"] for x in service.values())
    errors_top = service[top]["errors"] if top else None
    recorded_rps = (
        min(service[top]["ok"], service[top]["recorded"]["outputs"]) / service[top]["wall_s"]
        if top
        else None
    )
    batch = r.get("batch", {})
    startup = r.get("startup", {})
    checks = [
        (
            "Prédiction unitaire, concurrence 1 : latence p50",
            f"≤ {fr(TARGETS['c1_p50_ms'])} ms",
            service[one]["latency_ms"]["p50"] if one == "1" else None,
            "ms",
            lambda v: v <= TARGETS["c1_p50_ms"],
        ),
        (
            f"Concurrence {top} : prédictions enregistrées par seconde",
            f"≥ {fr(TARGETS['c32_recorded_rps'], 0)}/s",
            recorded_rps,
            "/s",
            lambda v: v >= TARGETS["c32_recorded_rps"],
        ),
        (
            f"Concurrence {top} : latence p99",
            f"≤ {fr(TARGETS['c32_p99_ms'], 0)} ms",
            service[top]["latency_ms"]["p99"] if top else None,
            "ms",
            lambda v: v <= TARGETS["c32_p99_ms"],
        ),
        (
            f"Concurrence {top} : erreurs",
            "0",
            errors_top,
            "",
            lambda v: v == 0,
        ),
        (
            "Enregistrements perdus ou incomplets (tous paliers)",
            "0",
            lost if service else None,
            "",
            lambda v: v == 0,
        ),
        (
            f"Lot de {fr(batch.get('size', 1000), 0)} employés : durée médiane",
            f"≤ {fr(TARGETS['batch_ms'], 0)} ms",
            batch.get("median_ms"),
            "ms",
            lambda v: v <= TARGETS["batch_ms"],
        ),
        (
            f"Débit face à la variante simple (concurrence {top})",
            f"≥ {fr(TARGETS['ratio'], 0)} ×",
            ratios.get(top, {}).get("throughput") if top else None,
            "×",
            lambda v: v >= TARGETS["ratio"],
        ),
        (
            "Démarrage jusqu'à /ready = 200 (base arrêtée, comme `make run`)",
            f"≤ {fr(TARGETS['ready_s'], 0)} s",
            startup.get("cold_first_ready_s"),
            "s",
            lambda v: v <= TARGETS["ready_s"],
        ),
    ]
    targets = [
        {
            "label": label,
            "target": target,
            "value": value,
            "unit": unit,
            "met": None if value is None else bool(test(value)),
        }
        for label, target, value, unit, test in checks
    ]
    floor = load.get("floor", {})
    floor_ratios = {}
    for c in levels:
        f, s, b = floor.get(str(c)), service[str(c)], baseline.get(str(c))
        if not f or f["throughput_rps"] <= 0:
            continue
        rec = min(s["ok"], s.get("recorded", {}).get("outputs", 0)) / s["wall_s"]
        floor_ratios[str(c)] = {
            "service": s["throughput_rps"] / f["throughput_rps"],
            "recorded": rec / f["throughput_rps"],
            "baseline": b["throughput_rps"] / f["throughput_rps"] if b else None,
            "p50": s["latency_ms"]["p50"] / f["latency_ms"]["p50"],
            "p99": s["latency_ms"]["p99"] / f["latency_ms"]["p99"],
            "baseline_p99": b["latency_ms"]["p99"] / f["latency_ms"]["p99"] if b else None,
        }
    return {
        "levels": levels,
        "top": top,
        "ratios": ratios,
        "targets": targets,
        "floor_ratios": floor_ratios,
        "floor_targets": floor_targets(r, top, one, floor_ratios),
    }


def floor_targets(
    r: dict[str, Any], top: str | None, one: str | None, q: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Issue 20's targets, each computed from this run (``met`` is None when not measured)."""
    service = r.get("load", {}).get("service", {})
    batch = r.get("batch", {})
    t = FLOOR_TARGETS
    single_one = service[one]["throughput_rps"] if one == "1" else None
    rows = [
        (
            f"Concurrence {top} : prédictions enregistrées, part du débit du plancher",
            f"≥ {fr(100 * t['top_recorded_share'], 0)} % (but : "
            f"{fr(100 * t['top_recorded_goal'], 0)} %)",
            100 * q[top]["recorded"] if top in q else None,
            "%",
            lambda v: v >= 100 * t["top_recorded_share"],
        ),
        (
            "Concurrence 1 : débit, part de celui du plancher",
            f"≥ {fr(100 * t['one_throughput_share'], 0)} %",
            100 * q["1"]["service"] if "1" in q else None,
            "%",
            lambda v: v >= 100 * t["one_throughput_share"],
        ),
        (
            f"Concurrence {top} : latence p99, multiple de celle du plancher",
            f"≤ {fr(t['top_p99_factor'], 0)} ×",
            q[top]["p99"] if top in q else None,
            "×",
            lambda v: v <= t["top_p99_factor"],
        ),
        (
            f"Lot de {fr(batch.get('size', 1000), 0)} : lignes/s, multiple du débit unitaire "
            "à concurrence 1",
            f"≥ {fr(t['batch_factor'], 0)} ×",
            batch["rows_per_s"] / single_one if batch and single_one else None,
            "×",
            lambda v: v >= t["batch_factor"],
        ),
    ]
    return [
        {
            "label": label,
            "target": target,
            "value": value,
            "unit": unit,
            "met": None if value is None else bool(test(value)),
        }
        for label, target, value, unit, test in rows
    ]


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    styles = {
        "service": ("-", "o", "Service"),
        "baseline": ("--", "s", "Variante simple"),
        "floor": (":", "^", "Plancher"),
    }
    colours = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#d62728"}
    for variant, runs in r.get("load", {}).items():
        if not runs:
            continue
        line, marker, name = styles[variant]
        levels = sorted(int(c) for c in runs)
        for q, colour in colours.items():
            values = [runs[str(c)]["latency_ms"][q] for c in levels]
            ax.plot(levels, values, line, marker=marker, color=colour, label=f"{name} — {q}")
    ax.axhline(TARGETS["c32_p99_ms"], color="grey", linestyle=":", linewidth=1)
    ax.annotate(
        f"objectif p99 à 32 : {fr(TARGETS['c32_p99_ms'], 0)} ms",
        (1, TARGETS["c32_p99_ms"]),
        textcoords="offset points",
        xytext=(2, 4),
        fontsize=8,
        color="grey",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    levels = sorted({int(c) for runs in r.get("load", {}).values() for c in runs})
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set_xlabel("Requêtes simultanées (concurrence)")
    ax.set_ylabel("Latence (ms, échelle log)")
    ax.set_title(
        f"POST /v1/predictions — {r['machine']['nproc']} cœurs, {r['config']['workers']} processus"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


# ---- cost as the trail grows (bench/scale.py) ----------------------------------------------


#: The sizes `make bench-scale` measures by default (bench/scale.py --sizes).
DEFAULT_SCALE_SIZES = (10_000, 1_000_000, 10_000_000)


def rounds_note(cfg: dict[str, Any]) -> str:
    """How many alternating passes each level had (runs before 0.7.0 had one)."""
    rounds = int(cfg.get("rounds_per_level", 1))
    if rounds <= 1:
        return ""
    return (
        f" Chaque palier est joué en {rounds} passes, le service et le plancher en "
        "alternance ; chacun garde sa passe de débit médian (toutes les passes sont dans le "
        "fichier de résultats, `passes`) : une passe dérangée par la machine ne fait pas le "
        "ratio à elle seule."
    )


def wal_line(r: dict[str, Any]) -> list[str]:
    """How the run treated PostgreSQL's log, and the log written per prediction."""
    wal = r.get("wal")
    if not wal:
        return []
    if not wal.get("segments"):
        warm = (
            "**non préchauffé** (pas de droit superutilisateur) : chaque segment de 16 Mo "
            "est créé et rempli de zéros pendant la mesure, ce qui bloque les validations"
        )
    else:
        warm = (
            f"préchauffé avant le premier palier : {wal['segments']} segments de 16 Mo "
            f"recyclés ({fr(wal['seconds'], 1)} s), comme sur un serveur en service. Une base "
            "neuve n'en a aucun : à chaque segment rempli, PostgreSQL crée le suivant et "
            "l'emplit de zéros en tenant le verrou d'écriture du journal, et toutes les "
            "validations attendent (environ 18 ms sur cette machine, à peu près chaque "
            "seconde à concurrence 32)"
        )
    line = f"- **Journal de PostgreSQL** : {warm}."
    if "bytes_per_prediction" in wal:
        line += (
            f" Pendant les paliers : {fr(wal['bytes'] / 2**20, 0)} Mio de journal pour "
            f"{wal['predictions']} prédictions, soit {fr(wal['bytes_per_prediction'] / 1024, 1)}"
            " Kio par prédiction (entrée, sortie, index, file et chaîne de scellement)"
        )
        if wal.get("segments") and not wal.get("covered"):
            line += " ; plus que les segments préchauffés : les derniers ont été créés en cours"
        line += "."
    return [
        line,
        "- **Plancher mesuré au calme** : avant chaque passe du plancher, le banc attend que "
        "le service ait scellé ses prédictions et que l'autovacuum soit passé (10 s au plus), "
        "pour que ce travail différé du service ne ralentisse pas le plancher.",
    ]


def sustained_lines(r: dict[str, Any]) -> list[str]:
    """The long pass at concurrency 32: the ratios to expect under steady load."""
    sus = r.get("sustained")
    if not sus or "ratio" not in sus:
        return []
    service, floor = sus["service"], sus["floor"]
    recorded = service.get("recorded", {}).get("outputs", 0)
    return [
        f"### Régime établi : une passe de {fr(sus['seconds'], 0)} s à concurrence 32",
        "",
        "Une passe de palier dure environ une seconde ; le service scelle la trace d'audit "
        "toutes les 5 s. Une passe courte contient un tour de scellement ou non, au hasard, "
        "et laisse de côté une partie de ce coût. Une passe longue contient les tours d'un "
        "serveur sous charge continue : ses rapports sont ceux à attendre sur des minutes. "
        "Le service et le plancher y sont mesurés l'un après l'autre, chacun au repos.",
        "",
        "| | Service | Plancher | Service ÷ plancher |",
        "| --- | ---: | ---: | ---: |",
        f"| Requêtes | {fr(service['ok'], 0)} ({recorded} enregistrées) | {fr(floor['ok'], 0)} | |",
        f"| Débit (prédictions enregistrées/s pour le service) | "
        f"{fr(recorded / service['wall_s'], 0)}/s | {fr(floor['throughput_rps'], 0)}/s | "
        f"{fr(100 * sus['ratio'], 1)} % |",
        f"| Latence p50 | {fr(service['latency_ms']['p50'], 2)} ms | "
        f"{fr(floor['latency_ms']['p50'], 2)} ms | "
        f"{fr(service['latency_ms']['p50'] / floor['latency_ms']['p50'], 1)} × |",
        f"| Latence p99 | {fr(service['latency_ms']['p99'], 2)} ms | "
        f"{fr(floor['latency_ms']['p99'], 2)} ms | {fr(sus['p99_ratio'], 1)} × |",
        f"| Erreurs | {service['errors']} | {floor['errors']} | |",
        "",
    ]


def gains_lines(path: Path = GAINS) -> list[str]:
    """The table "Ce que chaque changement a apporté", from bench/gains.json."""
    if not path.is_file():
        return ["Aucune mesure de gain enregistrée (`bench/gains.json`)."]
    gains = orjson.loads(path.read_bytes())
    lines = [
        gains["method"],
        "",
        "| Changement | Commit | CPU avant (µs/requête) | CPU après (µs/requête) | Gain "
        "| Autre effet |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in gains["changes"]:
        before, after = row.get("cpu_us_before"), row.get("cpu_us_after")
        gain = (
            f"{fr(100 * (before - after) / before, 0)} %"
            if before is not None and after is not None
            else "–"
        )
        cells = ["–" if v is None else fr(v, 0) for v in (before, after)]
        lines.append(
            f"| {row['change']} | `{row['commit']}` | {cells[0]} | {cells[1]} "
            f"| {gain} | {row.get('note', '')} |"
        )
    lines += ["", *gains.get("notes", [])]
    return lines


def latest_scale() -> Path | None:
    """The newest `make bench-scale` results with several sizes (else the newest at all)."""
    files = sorted(RESULTS.glob("scale-*.json"), key=measured_at, reverse=True)
    for path in files:
        if len(orjson.loads(path.read_bytes()).get("sizes", [])) >= 2:
            return path
    return files[0] if files else None


def scale_lines(path: Path | None) -> list[str]:
    """The table of `make bench-scale`'s newest results, every figure read from the file."""
    if path is None:
        return ["Pas encore de résultats de `make bench-scale` dans `bench/results/`."]
    r = orjson.loads(path.read_bytes())
    steps = r["sizes"]
    if not steps:
        return ["Résultats de `make bench-scale` vides."]
    cfg = r["config"]
    not_run = r.get("not_run", [])
    missing = [
        n
        for n in DEFAULT_SCALE_SIZES
        if n not in {s["target"] for s in steps} | {x["target"] for x in not_run}
    ]
    head = (
        "| Mesure | "
        + " | ".join(fr(s["predictions"], 0) for s in steps)
        + "".join(f" | {fr(x['target'], 0)}" for x in not_run)
        + " |"
    )
    lines = [
        f"Mesures du {r['date'][:10]} (commit `{r['commit']}`), fichier "
        f"`{path.relative_to(ROOT)}` ; machine : {machine_line(r['machine'])}. Tailles "
        f"mesurées : {', '.join(fr(s['target'], 0) for s in steps)} prédictions."
        + "".join(
            f" **{fr(x['target'], 0)} prédictions : non mesuré ici**, faute de place : "
            f"{fr(x['free_bytes'] / 1e9, 1)} Go libres sur le disque au moment de la remplir, "
            f"{fr(x['bytes_per_prediction'], 0)} octets par prédiction mesurés à la taille "
            f"précédente, soit environ {fr(x['need_bytes'] / 1e9, 1)} Go à écrire (index et "
            f"journal compris) ; le disque est partagé et la mesure s'arrête avant d'y laisser "
            f"moins de {fr(x['min_free_bytes'] / 1e9, 0)} Go (`--min-free-gb`)."
            for x in not_run
        )
        + (
            " Tailles par défaut non mesurées dans cette exécution : "
            + ", ".join(fr(n, 0) for n in missing)
            + " (machine partagée) ; elles restent à faire sur une machine au repos "
            "(`make bench-scale`, réglages par défaut)."
            if missing
            else ""
        ),
        "",
        head,
        "| --- |" + " ---: |" * (len(steps) + len(not_run)),
    ]
    absent = "".join(" | non mesuré (disque)" for _ in not_run)

    def row(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(s) for s in steps) + absent + " |")

    def ms(key: str) -> Any:
        return lambda s: f"{fr(s[key]['median_ms'], 2)} ms ({s[key].get('rows', '–')} lignes)"

    def per_s(v: float | None) -> str:
        return "–" if v is None else f"{fr(v, 0)}/s"

    row(
        "Remplissage (écriture groupée de l'API), lignes/s",
        lambda s: per_s(s["fill"]["fill_rows_per_s"]),
    )
    row("Scellement (chaîne d'empreintes), lignes/s", lambda s: per_s(s["fill"]["seal_rows_per_s"]))
    row(
        f"Historique de l'employé témoin (page de 50 ; {cfg['probe_records']} prédictions au plus)",
        ms("history_probe"),
    )
    row(
        "Historique d'un employé « lourd » (page de 50 ; ses prédictions croissent avec la trace)",
        lambda s: (
            f"{fr(s['history_heavy']['median_ms'], 2)} ms ({s['history_heavy'].get('rows', '–')} "
            f"lignes lues sur {fr(s['heavy_predictions'], 0)})"
        ),
    )
    row("Page profonde de `GET /v1/predictions` (curseur à 90 % de la liste)", ms("deep_page"))
    row("Export RGPD de l'employé témoin", ms("gdpr_export"))

    def plan(p: dict[str, Any] | None) -> str:
        if p is None:
            return "–"
        if not p["index_backed"]:
            return "**lecture complète**"
        return "index + tri" if p.get("sorts") else "index"

    row(
        "Plans (`EXPLAIN`) : historique témoin, historique lourd, export, page profonde",
        lambda s: " / ".join(
            plan(s["plans"].get(k)) for k in ("history", "history_heavy", "export", "deep_page")
        ),
    )

    def verify(s: dict[str, Any]) -> str:
        v = s["verify"]
        if v.get("failed"):
            return f"**échec** (code {v['returncode']})"
        if v.get("skipped"):
            return f"non lancée ({v['reason']})"
        found = "" if v.get("ok", True) else f", **{v.get('breaks', 'des')} rupture(s)**"
        return f"{per_s(v['rows_per_s'])} ({fr(v['seconds'], 2)} s{found})"

    row("`attrition audit verify` : lignes/s (durée)", verify)
    row(
        "`attrition audit verify` : mémoire de pointe du processus",
        lambda s: (
            "–"
            if "peak_rss_mib" not in s["verify"]
            else f"{fr(s['verify']['peak_rss_mib'], 0)} Mio"
        ),
    )
    row(
        "Dérive sur 30 jours : durée (entrées lues, au plus 100 000)",
        lambda s: f"{fr(s['drift_30d']['median_ms'], 0)} ms ({fr(s['drift_30d']['rows'], 0)})",
    )
    row(
        f"Purge des plus anciennes (au moins {fr(100 * cfg['purge_share'], 0)} %, par groupes "
        "d'écriture entiers) : durée (lignes purgées, lignes/s)",
        lambda s: (
            f"{fr(s['purge'].get('seconds'), 2)} s ({fr(s['purge'].get('predictions'), 0)}, "
            f"{per_s(s['purge'].get('rows_per_s'))})"
        ),
    )
    row(
        f"Prédiction unitaire, concurrence {cfg['concurrency']} : débit (erreurs)",
        lambda s: f"{fr(s['throughput']['throughput_rps'], 0)} req/s ({s['throughput']['errors']})",
    )
    row(
        "Disque par prédiction (entrée, sortie, chaîne ; tables, index, TOAST)",
        lambda s: f"{fr(s['disk']['bytes_per_prediction'], 0)} octets",
    )
    lines += [
        "",
        *scale_findings(steps),
        "",
        "Le remplissage passe par le chemin d'écriture réel : chaque employé est évalué une fois "
        "par le service de prédiction (score et explication de l'API), puis les lignes sont "
        "écrites par l'écriture groupée de l'API (la même instruction SQL), chacune signée "
        "comme le service signe ce qu'il répond, et scellées par le scelleur de l'API ; chaque "
        "ligne a son identifiant de requête, "
        f"{fr(100 * cfg['linked_share'], 0)} % nomment leur employé. L'employé témoin reçoit "
        f"{cfg['probe_records']} prédictions dans la première taille, puis plus aucune : son "
        "historique et son export doivent rester plats. Après chaque remplissage, les tables "
        "sont analysées (`VACUUM (ANALYZE)`, ce que ferait l'autovacuum). Les plans sont lus "
        "avec les réglages par défaut du planificateur (`enable_seqscan` actif) ; « index + "
        "tri » : PostgreSQL lit par l'index les quelques lignes de l'employé puis les trie, un "
        "tri de ce qui est rendu, pas de la trace. La vérification est lancée dans un processus "
        "à part ; sa mémoire de pointe est le `VmHWM` de ce processus. La purge est "
        "annulée après mesure (transaction annulée) pour garder la taille de la trace ; son "
        "COMMIT n'est donc pas compté. La dérive lit les entrées des 30 derniers jours, "
        "plafonnées à 100 000 : toute la trace a ici moins de 30 jours.",
    ]
    return lines


def memory_verdict(runs: list[dict[str, Any]]) -> str:
    """Whether the peak memory followed the file's length in these runs (computed)."""
    done = [x for x in runs if x["exit_code"] == 0]
    if len(done) < 2:
        return ""
    low, high = min(x["peak_rss_mib"] for x in done), max(x["peak_rss_mib"] for x in done)
    rows = max(x["rows"] for x in done) / min(x["rows"] for x in done)
    if high <= 1.2 * low:
        return (
            f" : pour un fichier {fr(rows, 0)} fois plus long, elle reste entre "
            f"{fr(low, 0)} et {fr(high, 0)} Mio, sans lien avec la longueur du fichier"
        )
    return f" : elle passe de {fr(low, 0)} à {fr(high, 0)} Mio, elle croît avec le fichier"


def longer_files(files: list[Path], longest: int) -> list[str]:
    """Older runs on longer files than the newest: their speed, and why not their memory."""
    out = []
    for path in files:
        r = orjson.loads(path.read_bytes())
        for x in r.get("predict_file") or []:
            if x["rows"] > longest and x["exit_code"] == 0 and "peak_rss_sampled_every_s" not in x:
                out.append(
                    f"Un fichier de {fr(x['rows'], 0)} lignes a été mesuré le {r['date'][:10]} "
                    f"(commit `{r['commit']}`, `{path.relative_to(ROOT)}`) : "
                    f"{fr(x['seconds'], 0)} s, {fr(x['rows_per_s'], 0)} lignes/s. Sa mémoire "
                    "de pointe d'alors n'est pas reprise : lue dans `ru_maxrss`, elle comptait "
                    "celle du banc qui lançait la commande (la même à l'octet près pour 100 000 "
                    "et 1 000 000 lignes)."
                )
    return ["", *out] if out else []


def predict_file_lines() -> list[str]:
    """`attrition predict --file` on large CSV files, from the newest results that have it."""
    files = sorted(RESULTS.glob("scale-*.json"), key=measured_at, reverse=True)
    for path in files:
        r = orjson.loads(path.read_bytes())
        runs = r.get("predict_file")
        if not runs:
            continue
        lines = [
            f"Mesures du {r['date'][:10]} (commit `{r['commit']}`), fichier "
            f"`{path.relative_to(ROOT)}` ; machine : {machine_line(r['machine'])}.",
            "",
            "| Lignes du fichier | Taille | Durée | Lignes/s | CPU de la commande (µs/ligne) "
            "| Mémoire de pointe du processus | Code de sortie |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for x in runs:
            cpu = f"{fr(1e6 * x['cpu_s'] / x['rows'], 0)}" if x.get("cpu_s") else "–"
            lines.append(
                f"| {fr(x['rows'], 0)} | {fr(x['file_bytes'] / 2**20, 0)} Mio "
                f"| {fr(x['seconds'], 1)} s | {fr(x['rows_per_s'], 0)} | {cpu} "
                f"| {fr(x['peak_rss_mib'], 0)} Mio | {x['exit_code']} |"
            )
        lines += [
            "",
            "`attrition predict --file F --json > /dev/null`, lancé comme un utilisateur le "
            "ferait, sur la base de `make bench-scale` ; la durée compte le démarrage du "
            "processus, la validation complète du fichier (rien n'est enregistré si une ligne "
            "est invalide), puis sa relecture par lots de 1 000 lignes, chacun évalué, écrit par "
            "l'écriture groupée de l'API et affiché avant le suivant. La mémoire de pointe est "
            "celle du processus (son `VmHWM`, relevé toutes les 0,1 s)"
            + memory_verdict(runs)
            + ".",
            *longer_files(files, max(x["rows"] for x in runs)),
        ]
        return lines
    return ["Pas encore de mesure de `attrition predict --file` (`make bench-scale`)."]


def scale_findings(steps: list[dict[str, Any]]) -> list[str]:
    """What the table says, each figure computed from it."""
    out = []
    first, last = steps[0], steps[-1]
    growth = last["predictions"] / first["predictions"] if first["predictions"] else None
    if growth and growth > 1:
        probe = last["history_probe"]["median_ms"] / first["history_probe"]["median_ms"]
        deep = last["deep_page"]["median_ms"] / first["deep_page"]["median_ms"]
        export = last["gdpr_export"]["median_ms"] / first["gdpr_export"]["median_ms"]
        plans = all(p["index_backed"] for s in steps for p in s["plans"].values())
        out.append(
            f"- **Lectures par employé** : trace multipliée par {fr(growth, 0)}, historique de "
            f"l'employé témoin × {fr(probe, 1)}, page profonde × {fr(deep, 1)}, export RGPD "
            f"× {fr(export, 1)} ; "
            + (
                "tous les plans passent par un index (aucune lecture complète de la trace)."
                if plans
                else "**au moins un plan lit la trace en entier** (voir le fichier de résultats)."
            )
        )
        heavy = last["history_heavy"]["median_ms"] / first["history_heavy"]["median_ms"]
        heavy_plans = [s["plans"]["history_heavy"] for s in steps]
        sorted_heavy = [
            fr(s["predictions"], 0)
            for s, p in zip(steps, heavy_plans, strict=True)
            if p.get("sorts")
        ]
        said = f" ; plan avec tri à {', '.join(sorted_heavy)} prédictions" if sorted_heavy else ""
        if all("sorts" in p for p in heavy_plans) and not sorted_heavy:
            said = (
                " ; l'index (employé, identifiant) donne ses lignes dans l'ordre : aucun tri "
                "dans le plan, la page s'arrête à sa cinquante et unième ligne"
            )
        out.append(
            f"- **Employé « lourd »** : {fr(first['heavy_predictions'], 0)} puis "
            f"{fr(last['heavy_predictions'], 0)} prédictions, le temps de sa page "
            f"× {fr(heavy, 1)} ({first['history_heavy'].get('rows', '–')} puis "
            f"{last['history_heavy'].get('rows', '–')} lignes lues){said}. À "
            f"{fr(last['predictions'], 0)} prédictions, sa page coûte "
            f"{fr(last['history_heavy']['median_ms'], 2)} ms et celle du témoin "
            f"({last['history_probe'].get('rows', '–')} lignes) "
            f"{fr(last['history_probe']['median_ms'], 2)} ms : le temps suit les lignes rendues."
        )
    ok = [s for s in steps if s["verify"].get("checked")]
    if len(ok) >= 2:
        a, b = ok[0]["verify"], ok[-1]["verify"]
        per_row = (b["peak_rss_mib"] - a["peak_rss_mib"]) / (b["checked"] - a["checked"]) * 1024
        if b["peak_rss_mib"] <= 1.2 * a["peak_rss_mib"]:
            out.append(
                f"- **Vérification de la chaîne** : {fr(a['rows_per_s'], 0)} puis "
                f"{fr(b['rows_per_s'], 0)} lignes/s ; pour {fr(b['checked'] / a['checked'], 0)} "
                f"fois plus de lignes, sa mémoire de pointe passe de {fr(a['peak_rss_mib'], 0)} à "
                f"{fr(b['peak_rss_mib'], 0)} Mio : elle lit la trace par lots (curseur côté "
                "serveur), sa mémoire ne dépend pas de la taille de la trace."
            )
        elif per_row > 0:
            out.append(
                f"- **Vérification de la chaîne** : {fr(a['rows_per_s'], 0)} puis "
                f"{fr(b['rows_per_s'], 0)} lignes/s ; sa mémoire de pointe croît d'environ "
                f"{fr(per_row, 1)} Kio par ligne vérifiée (elle charge toutes les lignes avant "
                f"de les parcourir) : à ce rythme, 10 millions de lignes demanderaient environ "
                f"{fr(per_row * 10_000_000 / 2**20, 0)} Gio. Elle doit lire la trace par "
                "tranches pour tenir à 10 millions."
            )
    out += rate_findings(steps)
    drift = [s for s in steps if s["drift_30d"].get("rows_per_s")]
    if drift:
        capped = [s for s in drift if s["drift_30d"]["rows"] == drift[-1]["drift_30d"]["rows"]]
        growth = capped[-1]["drift_30d"]["median_ms"] / capped[0]["drift_30d"]["median_ms"]
        flat = growth <= 1.25
        out.append(
            "- **Dérive** : elle lit les entrées des 30 derniers jours, plafonnées à 100 000 ("
            + ", ".join(
                f"{fr(s['drift_30d']['rows'], 0)} en {fr(s['drift_30d']['median_ms'], 0)} ms"
                for s in drift
            )
            + (
                ") : une seule taille au plafond, sa durée au-delà reste à mesurer."
                if len(capped) < 2
                else ") : au-delà du plafond, sa durée ne grandit plus avec la trace."
                if flat
                else f") : **à nombre d'entrées lues égal, sa durée grandit encore avec la "
                f"trace** (× {fr(growth, 2)} de {fr(capped[0]['predictions'], 0)} à "
                f"{fr(capped[-1]['predictions'], 0)} prédictions ; cause non établie par ce banc)."
            )
        )
    return out


#: Below this many rows a sealing or verification rate says more about start-up costs
#: than about the rows; the purge handles 1 % of the trail, hence its lower floor.
RATE_FLOOR = 100_000
PURGE_FLOOR = 1_000
#: The rate per row at the largest size may fall to this share of the first one's and still
#: be called linear (noise of a shared machine); below, the report says it falls.
KEPT_RATE = 2 / 3


def rate_findings(steps: list[dict[str, Any]]) -> list[str]:
    """Sealing, verification, purge: is the rate per row kept as the trail grows (computed)?"""
    out = []
    for label, floor, rows, rate in (
        ("Scellement", RATE_FLOOR, lambda s: s["fill"].get("sealed") or 0,
         lambda s: s["fill"].get("seal_rows_per_s")),
        ("Vérification (débit)", RATE_FLOOR, lambda s: s["verify"].get("checked") or 0,
         lambda s: s["verify"].get("rows_per_s")),
        ("Purge (débit)", PURGE_FLOOR, lambda s: (s.get("purge") or {}).get("predictions") or 0,
         lambda s: (s.get("purge") or {}).get("rows_per_s")),
    ):  # fmt: skip
        big = [s for s in steps if rows(s) >= floor and rate(s)]
        if len(big) < 2:
            continue
        first, last = rate(big[0]), rate(big[-1])
        said = (
            f"{fr(rows(big[0]), 0)} lignes à {fr(first, 0)}/s, {fr(rows(big[-1]), 0)} lignes à "
            f"{fr(last, 0)}/s"
        )
        if last >= KEPT_RATE * first:
            out.append(
                f"- **{label}** : {said} ; le débit par ligne se maintient (rapport "
                f"{fr(last / first, 2)}) : le coût est linéaire dans les lignes traitées."
            )
        else:
            out.append(
                f"- **{label}** : {said} ; **le débit par ligne chute (rapport "
                f"{fr(last / first, 2)}) : le coût croît plus vite que les lignes traitées**."
            )
    return out


# ---- pages ----------------------------------------------------------------------------------


def status(met: bool | None) -> str:
    return {True: "✅ atteint", False: "❌ manqué", None: "non mesuré"}[met]


def value_text(t: dict[str, Any]) -> str:
    v = t["value"]
    if v is None:
        return "–"
    if t["unit"] == "":
        return str(int(v))
    digits = 2 if t["unit"] in ("ms", "s") and v < 10 else (1 if t["unit"] != "/s" else 0)
    return f"{fr(v, digits)}{'' if t['unit'] == '/s' else ' '}{t['unit']}".strip()


def floor_targets_table(d: dict[str, Any]) -> list[str]:
    if not d["floor_ratios"]:
        return ["Plancher non mesuré dans cette exécution (`--no-floor` ou résultats anciens)."]
    return targets_table({"targets": d["floor_targets"]})


def floor_table(d: dict[str, Any]) -> list[str]:
    """Every level of the service (and of the plain variant) as a fraction of the floor."""
    if not d["floor_ratios"]:
        return []
    lines = [
        "| Concurrence | Service ÷ plancher (débit) | Service ÷ plancher (enregistrées/s) "
        "| Variante simple ÷ plancher (débit) | p50 service ÷ plancher | p99 service ÷ plancher "
        "| p99 variante simple ÷ plancher |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    pct = lambda v: "–" if v is None else f"{fr(100 * v, 1)} %"  # noqa: E731
    times = lambda v: "–" if v is None else f"{fr(v, 1)} ×"  # noqa: E731
    for c in sorted(d["floor_ratios"], key=int):
        q = d["floor_ratios"][c]
        lines.append(
            f"| {c} | {pct(q['service'])} | {pct(q['recorded'])} | {pct(q['baseline'])} "
            f"| {times(q['p50'])} | {times(q['p99'])} | {times(q['baseline_p99'])} |"
        )
    return lines


def history_lines(current: Path, results: Path = RESULTS, last: int = 12) -> list[str]:
    """The floor targets of the last full runs committed in ``results``, this one marked.

    One run says where the service stands at one moment of a machine whose speed varies from
    one minute to the next; the runs committed before it (other commits, other moments) show
    how far the same ratios move, so that a target met or missed by a point is read as such.
    """
    runs = []
    for path in sorted(results.glob("20*.json"), key=measured_at):
        r = orjson.loads(path.read_bytes())
        targets = r.get("floor_targets") or []
        if len(targets) != 4 or r.get("config", {}).get("requests_per_level", 0) < 5000:
            continue  # before the floor targets, or a reduced run
        runs.append((path, r, targets))
    runs = runs[-last:]
    if len(runs) < 2:
        return []
    lines = [
        "### D'une exécution à l'autre",
        "",
        f"Les {len(runs)} dernières exécutions complètes enregistrées dans `bench/results/` "
        "(commits successifs, même type de machine, rapports tels que calculés lors de "
        "chaque exécution) ; la sonde CPU est le meilleur temps de la boucle Python fixe au "
        "début de l'exécution.",
        "",
        "| Mesurée (UTC) | Commit | Sonde CPU | c=32 ÷ plancher | c=1 ÷ plancher "
        "| p99 c=32 ÷ plancher | Lot ÷ c=1 | Objectifs atteints |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    values: list[list[float]] = [[], [], [], []]
    for path, r, targets in runs:
        cells = []
        for i, t in enumerate(targets):
            v = t.get("value")
            if v is not None:
                values[i].append(v)
            unit = " %" if t.get("unit") == "%" else " ×"
            mark = "" if t.get("met") else " ✗"
            cells.append("–" if v is None else f"{fr(v, 1)}{unit}{mark}")
        probe = (r.get("machine", {}).get("cpu_probe_start") or {}).get("min_ms")
        met = sum(1 for t in targets if t.get("met"))
        when = str(r.get("date", ""))[:16].replace("T", " ")
        name = f"`{r.get('commit', '?')}`" + (" (cette page)" if path == current else "")
        lines.append(
            f"| {when} | {name} | {fr(probe, 0) + ' ms' if probe else '–'} | "
            + " | ".join(cells)
            + f" | {met} / {len(targets)} |"
        )
    span = lambda xs, unit: (  # noqa: E731
        f"de {fr(min(xs), 1)}{unit} à {fr(max(xs), 1)}{unit}" if xs else "–"
    )
    lines += [
        "",
        f"Sur ces exécutions, c=32 va {span(values[0], ' %')} du plancher, c=1 "
        f"{span(values[1], ' %')}, le p99 {span(values[2], ' ×')} et le lot "
        f"{span(values[3], ' ×')} le débit unitaire : un objectif tenu ou manqué d'un point "
        "dans une exécution est dans cet écart.",
        "",
    ]
    return lines


#: Start and end CPU probes further apart than this: the run is flagged as indicative.
PROBE_DRIFT = 1.2


def noise_warning(r: dict[str, Any]) -> list[str]:
    """A warning first, when the run was short or the machine busy with other work."""
    runs = [x for v in r.get("load", {}).values() for x in v.values()]
    other = [
        100 * x["other_cpu_s"] / x["machine_capacity_s"]
        for x in runs
        if x.get("machine_capacity_s")
    ]
    requests = r["config"]["requests_per_level"]
    parts = []
    if requests < 5000:
        parts.append(f"exécution réduite ({fr(requests, 0)} requêtes par palier)")
    if other and max(other) > 10:
        parts.append(
            f"machine partagée : d'autres processus en ont pris jusqu'à {fr(max(other), 0)} % "
            "pendant un palier"
        )
    mach = r.get("machine", {})
    probes = [(mach.get(k) or {}).get("min_ms") for k in ("cpu_probe_start", "cpu_probe_end")]
    if all(probes) and max(probes) > PROBE_DRIFT * min(probes):
        parts.append(
            f"la machine a changé de vitesse pendant l'exécution (sonde CPU "
            f"{fr(probes[0], 0)} ms au début, {fr(probes[1], 0)} ms à la fin)"
        )
    if not parts:
        return []
    return [
        f"**Mesure indicative** : {' ; '.join(parts)}. Les rapports ci-dessous en sont "
        "bruités ; relancer `make bench` sur une machine au repos pour des chiffres de "
        "référence.",
        "",
    ]


def machine_line(mach: dict[str, Any]) -> str:
    """The machine, and its CPU speed probe, as measured in the run."""
    text = (
        f"{mach['nproc']} cœurs ({mach['cpu_model']}), {fr(mach['memory_gib'], 0)} Gio de "
        f"mémoire, noyau {mach.get('kernel') or mach.get('platform', '–')}, "
        f"Python {mach['python']}"
    )
    start, end = mach.get("cpu_probe_start"), mach.get("cpu_probe_end")
    if start:
        text += (
            f" ; sonde CPU (boucle Python fixe de {fr(start['loops'], 0)} itérations) : "
            f"{fr(start['min_ms'], 0)} ms au mieux au début (médiane {fr(start['median_ms'], 0)} "
            "ms)"
        )
        if end:
            text += f", {fr(end['min_ms'], 0)} ms à la fin (médiane {fr(end['median_ms'], 0)} ms)"
    return text


def targets_table(d: dict[str, Any]) -> list[str]:
    lines = ["| Objectif | Cible | Mesuré | Statut |", "| --- | --- | --- | --- |"]
    for t in d["targets"]:
        lines.append(f"| {t['label']} | {t['target']} | {value_text(t)} | {status(t['met'])} |")
    return lines


def load_table(r: dict[str, Any]) -> list[str]:
    lines = [
        "| Variante | Concurrence | Débit (req/s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
        "| Erreurs | Enregistrées (entrées / sorties) | Perdues | CPU service (ms/req) "
        "| CPU PostgreSQL (ms/req) | CPU générateur (ms/req) | Autres processus |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    names = {"service": "Service", "baseline": "Variante simple", "floor": "Plancher"}
    for variant in ("service", "baseline", "floor"):
        runs = r.get("load", {}).get(variant, {})
        for c in sorted(runs, key=int):
            x = runs[c]
            lat = x["latency_ms"]
            other = (
                f"{fr(100 * x['other_cpu_s'] / x['machine_capacity_s'], 0)} %"
                if x.get("machine_capacity_s")
                else "–"
            )
            kept = (
                f"{x['recorded']['inputs']} / {x['recorded']['outputs']} sur {x['ok']} "
                f"| {x['lost']}"
                if "recorded" in x
                else "sans base | –"
            )
            lines.append(
                f"| {names[variant]} | {c} | {fr(x['throughput_rps'], 0)} | {fr(lat['p50'], 2)} "
                f"| {fr(lat['p95'], 2)} | {fr(lat['p99'], 2)} | {fr(lat['max'], 1)} "
                f"| {x['errors']} | {kept} | {fr(per_request_ms(x, 'service_cpu_s'), 2)} "
                f"| {fr(per_request_ms(x, 'postgres_cpu_s'), 2)} "
                f"| {fr(per_request_ms(x, 'client_cpu_s'), 2)} | {other} |"
            )
    return lines


def ratio_table(d: dict[str, Any]) -> list[str]:
    if not d["ratios"]:
        return ["Variante simple non mesurée dans cette exécution (`--no-baseline`)."]
    lines = [
        "| Concurrence | Débit (service ÷ variante simple) | Latence p50 (variante ÷ service) "
        "| Latence p99 (variante ÷ service) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for c in sorted(d["ratios"], key=int):
        q = d["ratios"][c]
        lines.append(
            f"| {c} | {fr(q['throughput'], 1)} × | {fr(q['p50'], 1)} × | {fr(q['p99'], 1)} × |"
        )
    return lines


def model_table(r: dict[str, Any]) -> list[str]:
    m = r["model"]
    lines = [
        "| Chemin | 1 ligne : médiane | 1 ligne : p99 | 10 000 lignes : médiane |",
        "| --- | ---: | ---: | ---: |",
    ]
    names = {
        "compiled": "Modèle compilé : probabilité seule (`columns_from_records` + `predict_proba`)",
        "compiled_top_factors": "Service : probabilité + explication (`score_and_explain`)",
        "compiled_with_explanation": "Modèle compilé : explication complète (`explain`)",
        "sklearn": "scikit-learn : pipeline sur un DataFrame pandas",
    }
    for key, name in names.items():
        if key not in m["rows_1"]:
            continue
        one, many = m["rows_1"][key], m["rows_10000"][key]
        lines.append(
            f"| {name} | {fr(one['median_ms'] * 1000, 0)} µs | {fr(one['p99_ms'] * 1000, 0)} µs "
            f"| {fr(many['median_ms'], 1)} ms |"
        )
    lines.append(
        f"| **Accélération (scikit-learn ÷ compilé)** | **{fr(m['rows_1']['speedup'], 1)} ×** "
        f"| | **{fr(m['rows_10000']['speedup'], 1)} ×** |"
    )
    return lines


def profile_lines(r: dict[str, Any]) -> list[str]:
    p = r.get("profile")
    if not p or not p.get("samples"):
        return [
            "Pas de profil dans cette exécution (`make bench BENCH_ARGS=--profile`, py-spy).",
        ]
    lines = [
        f"Profil py-spy d'un processus de l'API pendant une charge à concurrence 32 "
        f"({p['samples']} échantillons du fil de la boucle d'événements, temps passé hors "
        "attente) :",
        "",
        "| Poste | Part du temps CPU du processus |",
        "| --- | ---: |",
    ]
    for label, share in sorted(p["categories"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {fr(share, 1)} % |")
    lines += [
        "",
        '??? note "Fonctions où le processus passe le plus de temps (temps propre)"',
        "",
        "    | Fonction | Part |",
        "    | --- | ---: |",
    ]
    for name, share in p["self"][:20]:
        lines.append(f"    | `{name}` | {fr(share, 1)} % |")
    return lines


def cpu_split(r: dict[str, Any], variant: str = "service") -> tuple[str, list[float]]:
    """The highest concurrency and the CPU seconds of each process of ``variant`` there."""
    runs = r.get("load", {}).get(variant, {})
    if not runs:
        return "", []
    top = max(runs, key=int)
    return top, [x for x in runs[top].get("service_cpu_per_process_s", []) if x > 0.05]


def worker_split(r: dict[str, Any]) -> str:
    top, split = cpu_split(r)
    if not split:
        return ""
    return (
        f" À concurrence {top}, le temps CPU s'est réparti ainsi entre les processus du "
        f"service : {' ; '.join(fr(x, 2) + ' s' for x in split)}."
    )


def baseline_split(r: dict[str, Any]) -> str:
    """Whether the plain variant's connections landed on one worker in this run."""
    top, split = cpu_split(r, "baseline")
    if not split:
        return ""
    workers = r["config"]["workers"]
    shown = " ; ".join(fr(x, 2) + " s" for x in split)
    if workers > 1 and (len(split) < workers or min(split) < 0.25 * max(split)):
        return (
            f" Dans cette exécution, ses connexions à concurrence {top} se sont concentrées sur "
            f"un processus (CPU : {shown}) : son débit et le ratio en sont faussés."
        )
    return f" À concurrence {top}, CPU par processus : {shown}."


def commentary(r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    """Plain French observations, each number read from the results."""
    out: list[str] = []
    service = r.get("load", {}).get("service", {})
    top = d["top"]
    met = [t for t in d["targets"] if t["met"]]
    missed = [t for t in d["targets"] if t["met"] is False]
    out.append(
        f"- **{len(met)} objectifs atteints sur {len(d['targets'])}** dans cette exécution"
        + (" ; manqués : " + ", ".join(t["label"].lower() for t in missed) + "." if missed else ".")
    )
    q = d.get("floor_ratios", {})
    if top in q:
        floor_met = [t for t in d["floor_targets"] if t["met"]]
        out.append(
            f"- **Plancher** : à concurrence {top}, le service enregistre "
            f"{fr(100 * q[top]['recorded'], 1)} % du débit du plancher (la variante simple : "
            + (f"{fr(100 * q[top]['baseline'], 1)} %" if q[top]["baseline"] is not None else "–")
            + f") ; {len(floor_met)} objectif(s) relatif(s) au plancher atteint(s) sur "
            f"{len(d['floor_targets'])}. L'écart au plancher est ce que coûtent la clé, le "
            "modèle, l'explication, l'écriture durable et les protections du service."
        )
    if top:
        x = service[top]
        capacity = x.get("machine_capacity_s") or 0
        if capacity:
            parts = {
                "le service": x["service_cpu_s"],
                "PostgreSQL": x["postgres_cpu_s"],
                "le générateur de charge": x["client_cpu_s"],
                "les autres processus de la machine": x["other_cpu_s"],
            }
            shares = ", ".join(f"{k} {fr(100 * v / capacity, 0)} %" for k, v in parts.items())
            busy = 100 * x["machine_busy_s"] / capacity
            verdict = (
                "le débit est borné par le processeur"
                if busy >= 95
                else "le processeur n'est pas tout à fait saturé ; le reste se perd en attentes "
                "entre processus, chaque requête passant par le générateur, un processus de "
                "l'API et PostgreSQL qui se partagent deux cœurs"
            )
            out.append(
                f"- À concurrence {top}, la machine est occupée à {fr(busy, 0)} % ({shares} "
                f"des {r['machine']['nproc']} cœurs) : {verdict}. Le service, PostgreSQL et le "
                "générateur de charge se partagent les mêmes cœurs ; en production le client "
                "est ailleurs."
            )
        per_request = sum(
            per_request_ms(x, k) or 0.0 for k in ("service_cpu_s", "postgres_cpu_s", "client_cpu_s")
        )
        if per_request:
            ceiling = 1000 * (r["machine"]["nproc"] or 1) / per_request
            out.append(
                f"- Chaque prédiction coûte {fr(per_request_ms(x, 'service_cpu_s'), 2)} ms de "
                f"CPU au service, {fr(per_request_ms(x, 'postgres_cpu_s'), 2)} ms à PostgreSQL et "
                f"{fr(per_request_ms(x, 'client_cpu_s'), 2)} ms au générateur de charge : même sur "
                "une machine sans autre charge et entièrement occupée, cette configuration ne "
                f"dépasserait pas {fr(ceiling, 0)} requêtes/s sur {r['machine']['nproc']} cœurs."
            )
    lost = [t for t in d["targets"] if t["label"].startswith("Enregistrements perdus")]
    if lost and lost[0]["value"] == 0:
        total = sum(x["recorded"]["outputs"] for x in service.values())
        out.append(
            f"- Aucune perte : les {fr(total, 0)} prédictions réussies des paliers ont chacune "
            "leur entrée et leur sortie dans PostgreSQL (comptées par préfixe de `X-Request-ID` "
            "après chaque palier) ; une réponse ne part qu'après la validation de son écriture."
        )
    m = r.get("model")
    if m:
        out.append(
            f"- Modèle seul, le chemin compilé calcule une probabilité en "
            f"{fr(m['rows_1']['compiled']['median_ms'] * 1000, 0)} µs contre "
            f"{fr(m['rows_1']['sklearn']['median_ms'] * 1000, 0)} µs pour le pipeline "
            f"scikit-learn sur un DataFrame d'une ligne ({fr(m['rows_1']['speedup'], 0)} × plus "
            f"vite) ; sur 10 000 lignes l'écart se réduit ({fr(m['rows_10000']['speedup'], 1)} ×) "
            "car pandas n'a plus de surcoût fixe à amortir. Les probabilités sont identiques "
            f"(écart maximal {m['max_abs_difference']:.1e})."
        )
    s = r.get("startup", {})
    imports = r.get("imports", {})
    if s:
        out.append(
            f"- Démarrage : {fr(s.get('cold_first_ready_s'), 2)} s jusqu'au premier `/ready` "
            f"= 200 en démarrant aussi PostgreSQL, {fr(s.get('warm_first_ready_s'), 2)} s base "
            "déjà démarrée. Le processus parent met "
            f"{fr(s.get('cold_server_listening_s'), 2)} s à préparer la base (PostgreSQL, "
            "schéma, rôle, données, clé) avant de lancer uvicorn ; chaque processus importe "
            f"ensuite l'application ({fr(imports.get('api_app'), 2)} s dans un interpréteur "
            "neuf, sans scikit-learn : importer scikit-learn et skops coûterait à lui seul "
            f"{fr(imports.get('skops_sklearn'), 2)} s) puis charge le modèle compilé depuis "
            "la base."
        )
    p = r.get("profile")
    if p and p.get("samples"):
        ranked = sorted(p["categories"].items(), key=lambda kv: -kv[1])[:3]
        out.append(
            "- Dans un processus de l'API (profil ci-dessus), le temps CPU va d'abord à : "
            + " ; ".join(f"{label} ({fr(v, 0)} %)" for label, v in ranked)
            + "."
        )
    other = [
        100 * x["other_cpu_s"] / x["machine_capacity_s"]
        for x in service.values()
        if x.get("machine_capacity_s")
    ]
    if other and max(other) > 10:
        out.append(
            f"- **Mesure bruitée** : d'autres processus ont consommé jusqu'à "
            f"{fr(max(other), 0)} % de la machine pendant un palier (colonne « Autres "
            "processus ») ; les latences et les débits en sont dégradés d'autant. Relancer "
            "`make bench` sur une machine au repos pour des chiffres de référence."
        )
    return out


def render(path: Path) -> list[Path]:
    """Write latest.md, docs/performance.md and the plot from the results file ``path``."""
    r = orjson.loads(path.read_bytes())
    d = derived(r)
    plot(r, PLOT)
    rel = path.relative_to(ROOT)
    mach = r["machine"]
    cfg = r["config"]
    head = [
        f"Mesures du {r['date'][:10]} (commit `{r['commit']}`), fichier `{rel}`.",
        "",
    ]
    summary = [
        *head,
        f"Machine : {machine_line(r['machine'])}.",
        "",
        "## Rapport au plancher (même exécution)",
        "",
        *floor_targets_table(d),
        "",
        *floor_table(d),
        "",
        "## Objectifs",
        "",
        *targets_table(d),
        "",
        "## POST /v1/predictions",
        "",
        *load_table(r),
        "",
        *ratio_table(d),
        "",
    ]
    LATEST.write_text(
        "# Benchmark — derniers résultats\n\n"
        "<!-- Généré par bench/report.py : ne pas modifier à la main. -->\n\n"
        + "\n".join(summary)
        + "\n"
    )
    batch = r.get("batch", {})
    mem = r.get("memory", {})
    base_mem = r.get("memory_baseline", {})
    s = r.get("startup", {})
    imports = r.get("imports", {})
    doc = [
        "# Performances",
        "",
        "<!-- Généré par bench/report.py à partir de bench/results/*.json : ne pas modifier à "
        "la main, relancer `make bench`. -->",
        "",
        "Le client a demandé « une API performante ». Cette page donne les mesures de la "
        "dernière exécution du banc d'essai (`make bench`), les objectifs fixés, et ce qui les "
        "explique. Tous les chiffres ci-dessous sont lus dans le fichier de résultats.",
        "",
        *head,
        "## Rapport au plancher",
        "",
        "Les chiffres absolus ne se transposent pas d'une machine à l'autre (sur une machine "
        "du même type mais cinq fois plus lente, tout est cinq fois plus lent) ; seuls les "
        "rapports mesurés dans une même exécution ont un sens. Le **plancher** "
        "(`bench/floor_app.py`) est FastAPI seul : la même route, le même schéma de requête "
        "(`PredictionRequest`, validé comme par n'importe quelle route), puis une réponse "
        "fixe — ni clé, ni modèle, ni base, ni middleware. Il est servi exactement comme le "
        "service (même nombre de processus, un socket `SO_REUSEPORT` par processus), dans la "
        "même exécution, avec les mêmes corps de requête à tour de rôle et le même générateur "
        "de charge : aucune version du service ne peut faire mieux sur cette machine.",
        "",
        *noise_warning(r),
        *floor_targets_table(d),
        "",
        *floor_table(d),
        "",
        *history_lines(path),
        *sustained_lines(r),
        "## Objectifs absolus (cette machine)",
        "",
        *targets_table(d),
        "",
        "## Conditions de mesure",
        "",
        f"- **Machine** : {machine_line(mach)} ; charge moyenne au départ "
        f"{', '.join(fr(x, 2) for x in mach['load_average_at_start'])}. Les chiffres absolus "
        "de cette page ne valent que pour elle ; comparer deux machines par leur sonde CPU.",
        "- **Tout sur la même machine** : l'API (`attrition serve --no-train --workers "
        f"{cfg['workers']}`, uvicorn), PostgreSQL 16 embarqué (dossier temporaire, "
        "`synchronous_commit` actif : chaque validation attend l'écriture du journal sur "
        "disque) et le générateur de charge (`bench/load.py` : asyncio et HTTP/1.1 brut sur "
        "des connexions persistantes, un processus à part, son CPU mesuré et publié).",
        *wal_line(r),
        f"- **Charge** : boucle fermée, {cfg['requests_per_level']} requêtes par palier de "
        f"concurrence ({', '.join(map(str, cfg['concurrency']))}), après un échauffement ; "
        "les 1 470 employés du jeu de données servent de corps de requête, à tour de rôle."
        + rounds_note(cfg),
        "- **Service** : écriture groupée "
        f"`ATTRITION_DB__GROUP_COMMIT={str(cfg['group_commit']).lower()}`, "
        f"journaux `{cfg['log_level']}` (une ligne d'accès par requête, écrite par l'application), "
        f"pool de {cfg['pool_max_size']} connexions par processus, limite de débit par clé "
        "relevée pour la mesure.",
        "- **Variante simple** (`bench/baseline_app.py`) : la même route écrite sans souci de "
        "performance (fonction synchrone, pipeline scikit-learn sur un DataFrame d'une ligne, "
        "une session SQLAlchemy et une validation par requête), même base, même nombre de "
        "processus, servis de la même façon (un socket d'écoute par processus) : seule la "
        "route diffère. Elle fait moins que le service (ni clé API, ni explication) : les "
        "ratios sont donc prudents." + baseline_split(r),
        "- **Plancher** (`bench/floor_app.py`) : FastAPI, le schéma `PredictionRequest` et une "
        "réponse fixe, servi de la même façon ; rien n'est enregistré (colonne « sans base »).",
        "",
        "## Prédiction unitaire : `POST /v1/predictions`",
        "",
        *load_table(r),
        "",
        "« Enregistrées » compte, après chaque palier, les entrées (`prediction_inputs`) et les "
        "sorties (`predictions`) portant le préfixe de `X-Request-ID` du palier ; « Perdues » "
        "est l'écart avec les réponses réussies. Le CPU est mesuré par processus pendant le "
        "palier ; « Autres processus » est la part de la machine prise par tout le reste.",
        "",
        "### Comparaison avec la variante simple et le plancher",
        "",
        *ratio_table(d),
        "",
        *floor_table(d),
        "",
        "![Latences p50, p95 et p99 selon la concurrence](img/performance/latence.png)",
        "",
        f"## Lot de {fr(batch.get('size', 1000), 0)} employés : `POST /v1/predictions/batch`",
        "",
    ]
    if batch:
        doc += [
            "| Mesure | Valeur |",
            "| --- | ---: |",
            f"| Durée de bout en bout (médiane de {batch['repeats']}) | "
            f"{fr(batch['median_ms'], 1)} ms |",
            f"| Plus rapide / plus lente | {fr(batch['min_ms'], 1)} ms / "
            f"{fr(batch['max_ms'], 1)} ms |",
            f"| Débit | {fr(batch['rows_per_s'], 0)} lignes/s |",
            f"| Taille du corps | {fr(batch['body_bytes'] / 1024, 0)} Kio |",
            f"| Lignes enregistrées (entrées / sorties / attendues) | {batch['recorded_inputs']} "
            f"/ {batch['recorded_outputs']} / {batch['expected_records']} |",
        ]
        if batch.get("settled"):
            doc.append(
                f"| Attente du repos avant le premier lot (file de scellement vide, pas "
                f"d'autovacuum, moins de 15 % de CPU occupé) | "
                f"{fr(batch['settled']['waited_s'], 1)} s |"
            )
        doc.append("")
    doc += [
        "## Modèle seul",
        "",
        "Même processus, machine sans charge HTTP ; le pipeline scikit-learn et le modèle "
        "compilé sont ceux de la version active.",
        "",
        *model_table(r),
        "",
        "## Démarrage et mémoire",
        "",
        "| Mesure | Valeur |",
        "| --- | ---: |",
        f"| `attrition serve` jusqu'au premier `/ready` = 200, PostgreSQL arrêté | "
        f"{fr(s.get('cold_first_ready_s'), 2)} s |",
        f"| Idem, tous les processus prêts | {fr(s.get('cold_all_workers_s'), 2)} s |",
        f"| `attrition serve` jusqu'au premier `/ready` = 200, PostgreSQL déjà démarré | "
        f"{fr(s.get('warm_first_ready_s'), 2)} s |",
        "| Dont préparation par le processus parent (base, migrations, données, clé) "
        "jusqu'à l'écoute d'uvicorn, PostgreSQL arrêté | "
        f"{fr(s.get('cold_server_listening_s'), 2)} s |",
        f"| Variante simple jusqu'à `/ready` = 200 | {fr(s.get('baseline_ready_s'), 2)} s |",
        f"| Import de `attrition.api.app` dans un interpréteur neuf | "
        f"{fr(imports.get('api_app'), 2)} s |",
        "| Pour comparaison : import de scikit-learn et skops (évité par le service, qui lit "
        f"la forme compilée du modèle) | "
        f"{fr(imports.get('skops_sklearn'), 2)} s |",
        f"| Mémoire résidente par processus de l'API, après la charge | "
        f"{' ; '.join(fr(x, 0) + ' Mio' for x in mem.get('rss_mib', []))} |",
        f"| Mémoire résidente par processus de la variante simple | "
        f"{' ; '.join(fr(x, 0) + ' Mio' for x in base_mem.get('rss_mib', [])) or '–'} |",
        "",
        f"`attrition serve --workers {cfg['workers']}` a bien lancé {mem.get('workers', '–')} "
        "processus uvicorn sur la base embarquée : le processus parent démarre PostgreSQL et "
        "transmet son URL aux processus (`DATABASE_URL`), chacun ouvre son pool et charge le "
        "modèle depuis la base." + worker_split(r),
        "",
        "## Coût quand la trace grandit (`make bench-scale`)",
        "",
        *scale_lines(latest_scale()),
        "",
        "### `attrition predict` sur un gros fichier CSV",
        "",
        *predict_file_lines(),
        "",
        "## Où passe le temps",
        "",
        *profile_lines(r),
        "",
        "## Commentaire",
        "",
        *commentary(r, d),
        "",
        "Ce qui a été fait pour le chemin de prédiction :",
        "",
        "- **Écriture groupée** (`attrition.db.writer`, `ATTRITION_DB__GROUP_COMMIT`) : les "
        "prédictions des requêtes simultanées d'un processus partent ensemble, en une seule "
        "instruction SQL (un document JSON typé par PostgreSQL) qui est sa propre transaction ; "
        "chaque réponse attend la validation de son groupe. Moins d'allers-retours, une "
        "écriture du journal par groupe au lieu d'une par requête. Un enregistrement refusé "
        "(contrainte) ne fait échouer que sa requête.",
        "- **Gros lots** : au-delà de 500 prédictions, l'écriture relève `work_mem` pour sa "
        "seule transaction (le document JSON d'un lot de 1 000, 3,5 Mo, débordait sinon dans "
        "un fichier temporaire) ; le document part en octets vers le pilote, sans aller-retour "
        "par une chaîne Python.",
        "- **Dépendances FastAPI asynchrones** : une dépendance `def` est exécutée dans le "
        "pool de fils, un changement de fil par requête pour lire `app.state`.",
        "- **Explications vectorisées** (`CompiledLinearModel.ranked_factors`) : variables "
        "calculées une fois, facteurs classés par numpy, puis chaque facteur affiché devient "
        "directement un dictionnaire JSON, sans objet intermédiaire (lot de 1 000 : 8 ms au "
        "lieu de 31 ms) ; résultat identique à `explain` sur les 1 470 employés (testé).",
        "- **Corps JSON lus par orjson** (`attrition.api.routing`), la bibliothèque standard "
        "ne servant plus qu'aux corps qu'orjson refuse (`NaN`, JSON mal formé), pour garder "
        "les mêmes messages d'erreur.",
        "- **Modèle servi sans scikit-learn** : le registre enregistre, à côté de l'artefact, "
        "la forme compilée du modèle (quelques tableaux de poids, liée à l'empreinte de "
        "l'artefact) ; les processus de l'API la lisent sans importer scikit-learn, SciPy, "
        "pandas ni skops.",
        "- **Un socket d'écoute par processus** (`attrition.api.server`, `SO_REUSEPORT`) : avec "
        "le socket partagé d'uvicorn, le premier processus réveillé acceptait toutes les "
        "connexions ouvertes ensemble (mesuré : les 32 sur un seul des deux processus, la "
        "machine à moitié inoccupée) ; le noyau les répartit désormais entre les processus.",
        "- **Scellement de la trace d'audit par tranches** de 100 enregistrements qui rendent la "
        "main à la boucle d'événements : d'un bloc, il retenait les requêtes pendant des "
        "centaines de millisecondes (le p99 d'une exécution était monté à 88 ms).",
        "- **Démarrage léger** : une base déjà à jour est vérifiée par psycopg seul (révision "
        "du schéma, droits, données, modèle, clé) ; Alembic et SQLAlchemy ne sont chargés que "
        "s'il y a une migration à appliquer, et jamais par les processus de l'API ; PostgreSQL "
        "démarre pendant les imports ; les dépendances sont compilées en bytecode à "
        "l'installation.",
        "- **Générateur de charge léger** : httpx coûtait 0,75 ms de CPU par requête, pris "
        "sur les deux mêmes cœurs que le service ; `bench/load.py` écrit des requêtes "
        "préparées sur des connexions persistantes et lit la réponse par sa longueur (environ "
        "0,07 ms par requête), comme le ferait `wrk`. Son CPU reste mesuré et publié.",
        "- **Score d'une seule ligne en Python pur** (`attrition.model.scalar`) : pour une "
        "ligne, numpy coûtait surtout par ses quelque quarante appels sur des tableaux d'un "
        "élément ; le calcul scalaire reprend les poids compilés en flottants Python. Il est "
        "gardé identique au chemin vectorisé par un test sur les 1 470 employés "
        "(probabilités à 1e-12 près, mêmes facteurs dans le même ordre, mêmes valeurs "
        "affichées ; identiques au bit près sur cette machine : mêmes logarithmes et même "
        "sigmoïde que numpy, même ordre de sommation). Toute entrée qu'il ne sait pas vérifier "
        "passe par le chemin vectorisé, qui donne le message d'erreur.",
        "- **Un seul aller-retour PostgreSQL par prédiction** (`attrition.db.pool`) : le pool "
        "vérifiait chaque connexion prêtée par une requête vide, un aller-retour de plus par "
        "écriture ; il regarde désormais la socket sans attendre et ne fait la vraie "
        "vérification que si le serveur a écrit quelque chose (fermeture après un "
        "redémarrage, notification). Une connexion morte n'est toujours jamais prêtée (test "
        "de redémarrage de PostgreSQL). L'écriture groupée n'attend aucune minuterie : une "
        "requête seule part aussitôt.",
        "- **Clé et rôle en une dépendance** sur les routes de prédiction "
        "(`deps.authorised`) : `require` enchaînait quatre dépendances (rôle, client, en-tête "
        "Bearer, en-tête X-API-Key) résolues par FastAPI à chaque requête alors que la clé est "
        "déjà vérifiée avant la lecture du corps ; mêmes refus, mêmes messages, même "
        "description OpenAPI (testé).",
        "- **Sessions web pour les pages seulement** : le cookie de session n'est envoyé qu'à "
        "`/app` ; l'API ne traverse plus les deux couches de session. Le middleware de bord "
        "aiguille lui-même les pages vers elles : une couche de moins pour toute requête.",
        "- **Couche HTTP allégée sur le chemin d'une prédiction** : les routes de prédiction "
        "sont essayées en premier par le routage (aucune autre route ne partage leurs chemins, "
        "testé ; la description OpenAPI garde son ordre) ; la télémétrie OpenTelemetry "
        "intégrée à FastAPI, qui n'émettait rien faute de SDK mais interrogeait les "
        "fournisseurs à chaque requête, est coupée par son réglage documenté ; le bord lit ses "
        "en-têtes en une passe et ajoute des en-têtes de sécurité préparés au démarrage ; la "
        "clé est lue des en-têtes sans les deux objets de sécurité de FastAPI (mêmes règles, "
        "testées) ; identifiant de requête, état de la requête et compteurs Prometheus sans "
        "objet intermédiaire.",
        "- **Clé vérifiée gardée 5 s** (`KEY_CACHE_TTL_S`) : aucune lecture de `api_keys` par "
        "requête ; une révocation faite ailleurs (CLI, autre processus, autre réplique) est "
        "refusée partout en 5 s au plus, une révocation par l'API aussitôt dans son processus "
        "(testé : révoquée, encore acceptée pendant le délai, refusée après).",
        "- **Quota journalier dans l'écriture de la trace** (0.6.0) : la prise du quota "
        "(`usage_counters`, `INSERT … ON CONFLICT … WHERE … RETURNING`) est portée par "
        "l'instruction qui enregistre les prédictions ; à concurrence 1, un aller-retour vers "
        "PostgreSQL de moins par prédiction. La prédiction et son compte sont validés ensemble : "
        "une écriture refusée ne coûte rien au quota, un rejeu ne prend rien (testé). Un groupe "
        "d'une seule clé prend une instruction simple ; un groupe qui mêle des clés, une "
        "instruction générale environ deux fois plus chère pour PostgreSQL ; les requêtes d'une "
        "clé dont la somme dépasse le plafond sont réécrites une à une, dans l'ordre.",
        "- **Voie rapide de la prédiction unitaire** (0.7.0, `attrition.api.lane`, ADR 19) : "
        "le cas ordinaire de `POST /v1/predictions` (pas de paramètre, une clé, un corps que "
        "le schéma accepte) est servi par une couche ASGI derrière le bord, sans le routage, "
        "la résolution des dépendances ni le gestionnaire de requête de FastAPI, avec les "
        "fonctions mêmes de la route ; tout autre cas est remis à la route FastAPI, corps "
        "relu. Un test envoie les mêmes requêtes (valides, refusées de toutes les façons, "
        "rejeux, quota, base injoignable) à une application avec et sans la voie et compare "
        "statut, corps et en-têtes.",
        "- **Petits postes du chemin d'une prédiction** (0.7.0) : probabilité d'une ligne par "
        "les fonctions scalaires de numpy (même nombre au bit près que le chemin vectorisé, "
        "testé) et nœuds de la recalibration convertis une fois ; enregistrements du journal "
        "sans recherche de l'appelant ni noms de fil et de processus (réglages documentés du "
        "module `logging`, qu'aucun format n'affiche) ; limite par minute partagée mise à "
        "jour sans gestionnaire de contexte générique et avec l'empreinte de la clé gardée ; "
        "clé déjà vérifiée non hachée de nouveau tant que son entrée de cache est fraîche "
        "(révocation inchangée, testé).",
        "- **Écriture groupée sans attente du compte d'une autre** (0.7.0) : l'instruction d'un "
        "groupe écrit ses lignes puis ajoute au quota journalier de la clé, dont la ligne "
        "n'est plus verrouillée que pendant la validation (la table refuse elle-même un compte "
        "au-delà du plafond, migration 0014) ; chaque processus écrit un groupe de petites "
        "requêtes à la fois (celles qui arrivent entre-temps forment le suivant, plus grand), "
        "les lots ayant leur propre tour. Avant, avec deux processus et une seule clé, les "
        "groupes s'écrivaient l'un après l'autre derrière le verrou du compte.",
        "- **Écriture groupée allégée** (0.8.0) : une connexion gardée pour les petits groupes "
        "(vérifiée par sa socket avant chacun, rendue au pool toutes les 60 s), au lieu d'un "
        "emprunt, d'une vérification et de deux bascules de validation automatique par "
        "groupe ; la requête qui trouve l'écriture au repos écrit son groupe elle-même, sans "
        "passer par la tâche de fond ; chaque enregistrement part comme le tableau que couvre "
        "son MAC (plus de document à clés par colonne à analyser pour PostgreSQL) ; une "
        "requête isolée d'une ligne a son instruction propre. Journal d'accès écrit par lots, "
        "0,2 s plus tard au plus (ADR 20).",
        "- **Lot écrit pendant qu'il est évalué** (0.9.0, ADR 21) : une tâche réserve les "
        "identifiants et copie les entrées du lot pendant que la requête passe le modèle sur "
        "toutes les lignes puis explique et signe les lignes par tranches de 100 ; les sorties "
        "suivent, et la réponse est mise en forme pendant que PostgreSQL contrôle les sorties. "
        "Une seule transaction : un échec à n'importe quelle tranche n'écrit rien (testé).",
        "- **Scellement qui suit la charge** (0.9.0, correctif) : chaque tour scelle tout ce qui "
        "attend, par transactions de 1 000 espacées de 10 ms, au lieu d'un paquet de 5 000 "
        "toutes les 5 s ; le service paie désormais le scellement pendant les passes mesurées "
        "(environ 4 µs de CPU de l'API et 7 µs de PostgreSQL par prédiction), qu'il reportait "
        "auparavant au-delà de 1 000 prédictions par seconde.",
        "- **En-tête et corps d'une réponse en une écriture** (0.10.0, ADR 24) : uvicorn "
        "écrivait l'en-tête puis le corps ; le client, réveillé par le premier paquet, "
        "trouvait l'en-tête seul trois fois sur quatre et attendait le corps. Un paquet par "
        "réponse (compté par le noyau, testé) ; CPU du générateur de charge 85 → 73 µs par "
        "requête à concurrence 1, débit du service dans le bruit.",
        "- **Mesure du régime établi** (0.10.0, ADR 23) : journal de PostgreSQL préchauffé, "
        "plancher mesuré au calme, passe longue à concurrence 32 (voir les conditions de "
        "mesure et la section « Régime établi »).",
        "- **Chaque processus de l'API sur un processeur à lui** (0.11.0, ADR 26) : le "
        "superviseur garde le processus *i* (et son remplaçant) sur le *i*-ᵉ processeur "
        "permis ; PostgreSQL n'est pas touché, le plancher est servi par le même code. Sur un "
        "même serveur, en alternance : +12 % de prédictions par seconde à concurrence 32, "
        "rien de mesurable à concurrence 1 ni pour le plancher.",
        "- **Sorties d'un lot copiées chunk par chunk** (0.11.0, ADR 25) : la copie des "
        "sorties commence dès que les entrées sont prises, au lieu d'attendre la dernière "
        "signature ; 1 à 3 ms de moins par lot de 1 000 (dans le bruit de cette machine).",
        "- **Clé et version de modèle vérifiées une fois par instruction** (0.12.0, ADR 27) : "
        "les deux clés étrangères de la trace vers `api_keys` et `model_versions` "
        "verrouillaient, ligne à ligne, la même clé et la même version pour tous les "
        "écrivains ; un déclencheur par instruction les vérifie en une anti-jointure, et "
        "clés et versions ne se suppriment plus. Travail de PostgreSQL pour un lot de 1 000 : "
        "44 → 35 ms ; 62 → 55 µs par prédiction en écriture groupée (micro-banc).",
        "- **Compteurs écrits une fois par itération de la boucle** (0.13.0, ADR 28) : "
        "prometheus_client en mode multiprocessus écrivait six valeurs en mémoire partagée par "
        "prédiction (verrou, `getpid`, écriture) ; les requêtes d'une itération s'additionnent "
        "dans des dictionnaires, écrits à la fin de l'itération (huit requêtes par itération "
        "en moyenne sous charge). Avec le score scalaire allégé : 169 → 159 µs de CPU par "
        "prédiction en processus (concurrence 32).",
        "- **Réponse préparée pendant l'écriture** (0.13.0, ADR 29) : le corps d'une prédiction "
        "unique est rendu pendant que PostgreSQL l'enregistre, l'identifiant et l'horodatage "
        "insérés après le `COMMIT` (octets identiques, testé) ; concurrence 1 en processus : "
        "1 460 → 1 574 prédictions/s. Un lot envoie au `COPY` le JSON que couvre le MAC, fait "
        "une fois.",
        "- **L'entrée d'une prédiction vérifiée par instruction** (0.14.0, ADR 30) : la "
        "dernière clé étrangère de la trace verrouillait chaque ligne d'entrée (un "
        "enregistrement du journal de plus par prédiction) ; la référence est vérifiée par le "
        "déclencheur qui vérifie déjà la version du modèle. CPU de PostgreSQL : groupes de 10, "
        "environ 3 µs de moins par prédiction (57–59 → 54–57 µs) ; lot par `COPY`, 21,7 → "
        "20,7 µs par ligne. Servi : dans le bruit.",
        "- **Le processus PostgreSQL des petits groupes avec son processus d'API** (0.15.0, "
        "ADR 31) : le processus serveur de la connexion que garde l'écriture groupée est gardé "
        "sur le processeur de son processus d'API (seulement s'il est prouvé local), et rendu "
        "à ses processeurs avec la connexion. Laissé libre, il était réveillé sur l'autre "
        "processeur pendant que le sien restait inoccupé. Servi, quatre séries alternées : "
        "concurrence 32, +7 à +12 % de prédictions/s, machine inoccupée 6,5–8,2 % → "
        "3,2–3,8 %, p99 12,6–14,5 → 10,2–11,1 ms ; concurrence 1 dans le bruit.",
        "- **La ligne d'accès formatée avec son lot** (0.16.0, ADR 32) : la requête remet les "
        "morceaux de sa ligne au gestionnaire du journal (sans enregistrement `logging`, "
        "sans verrou) ; le fil qui écrit le lot les formate, par tranches de 32, avec le "
        "formateur configuré (texte identique, testé). Faite par requête, au milieu du reste, "
        "la ligne coûtait bien plus que ses 6 µs en boucle : servi, deux séries alternées, "
        "+4 et +7 % à concurrence 1, +4 % à concurrence 32 (CPU de l'API 273 → 262 et "
        "285 → 270 µs par prédiction).",
        "- **Historique des exécutions** (0.12.0) : la section « D'une exécution à l'autre » "
        "montre les rapports au plancher des dernières exécutions enregistrées, pour lire un "
        "objectif tenu ou manqué d'un point dans l'écart d'une exécution à l'autre.",
        "",
        "### Ce que chaque changement a apporté",
        "",
        *gains_lines(),
        "",
        "Pistes non réalisées, par ordre d'effet attendu :",
        "",
        "- **Allers-retours entre processus** : à concurrence 1, une prédiction réveille "
        "quatre fois un processus (client, service, PostgreSQL, service), le plancher deux. "
        "Mesuré en 0.8.0 en retirant l'écriture (ablation, servi) : sans elle l'API répond "
        "4 150 prédictions/s à concurrence 1 pour 241 µs de CPU, avec elle environ 1 140 pour "
        "470 µs ; l'aller-retour vers PostgreSQL coûte donc au processus de l'API environ "
        "230 µs, surtout dans le noyau de cette machine virtuelle (réveil du processus "
        "PostgreSQL par `send`, sommeil et réveil dans `epoll`, inscription du descripteur à "
        "chaque attente par le pilote). Le gain restant passe par moins de réveils, pas par "
        "moins de Python.",
        "- **PostgreSQL à concurrence 32** : environ 0,1 ms par prédiction pour des groupes "
        "d'environ 8 requêtes (16 connexions par processus). Profil (perf) : analyse du JSON "
        "15 %, contrôles des clés étrangères 10 % (ceux des deux références partagées par "
        "toutes les lignes remplacés en 0.12.0, ADR 27 ; celui de l'entrée, qui verrouillait "
        "chaque ligne d'entrée, en 0.14.0, ADR 30), déclencheur de la file de "
        "scellement 6 %, "
        "validation durable 14 %, extension des tables 7 % ; les trois premiers sont des "
        "garanties d'intégrité de la trace, gardées. Des groupes plus grands demanderaient "
        "d'attendre les requêtes suivantes : laisser tourner la boucle une fois avant de "
        "prendre un groupe les porte de 7,9 à 9,7 requêtes et retire 3 % de CPU, sans "
        "changer le débit (la machine reste inoccupée 8 à 11 % du temps : le temps gagné "
        "devient de l'attente) ; non gardé.",
        "- **Attente des validations durables à concurrence 32** (mesuré en 0.11.0, servi, "
        "2 × 8 000 requêtes alternées) : avec `synchronous_commit = off` (à ne pas faire : la "
        "réponse partirait avant que la trace soit sur disque), 4 955 contre 4 416 "
        "prédictions/s et 3,0 % de machine inactive contre 9,4 % ; le temps où chaque "
        "processus attend le `fsync` de son groupe laisse les cœurs inoccupés. Un second "
        "groupe en vol par processus (3 323 contre 4 259/s, plus de CPU de PostgreSQL par "
        "prédiction), `commit_delay` (100 µs, `commit_siblings = 1` : dans le bruit) et "
        "une boucle d'attente avant de prendre un groupe (groupes de 8,4 à 9,4, débit plus "
        "bas) n'ont pas comblé cette attente.",
        "- **Le compte du quota journalier** (0.14.0, servi, une seule clé, 4 alternances de "
        "8 000 requêtes à concurrence 32) : le groupe ajoute au compte de sa clé en dernier, "
        "mais la ligne du compteur reste verrouillée jusqu'au `COMMIT`, et les groupes des deux "
        "processus s'y attendent. Sans aucune prise (à ne pas faire : le quota ne serait plus "
        "appliqué), 4 647 contre 4 398 prédictions/s (médianes ; 4 452 contre 3 834 dans une "
        "première série) ; avec un compteur par processus (inexact : deux processus "
        "pourraient ensemble passer le plafond), 4 501/s. Un plafond exact, commun aux "
        "processus et aux réplicas, demande que les prises d'une même clé se suivent : gardé.",
        "- **Ce que coûte l'écriture au processus de l'API** (0.11.0, servi, ablation) : sans "
        "écriture, l'API prend 242 µs de CPU par prédiction à concurrence 32 (330 avec) et "
        "251 µs à concurrence 1 (516 avec), pour 6 642 et 3 856 prédictions/s. Le même "
        "service répondant une constante dès le corps validé (clé, modèle et écriture "
        "retirés, middlewares, journal d'accès et métriques gardés) prend 78 µs par requête "
        "et répond 17 888/s, plus que le plancher (14 726/s) : le cadre n'est pas l'écart.",
        "- **Deux processus sur deux cœurs** : PostgreSQL et le générateur de charge se "
        "partagent les mêmes cœurs ; le second processus de l'API coûte du CPU à chaque "
        "prédiction (groupes plus petits, changements de contexte). En 0.7.0, deux processus "
        "donnaient 3 678 à 3 800 prédictions/s contre 3 234 à 3 295 pour un, mais avec "
        "283-288 µs de CPU de l'API par prédiction contre 213-215 µs (`attrition serve`, "
        "`bench/load.py`, exécutions alternées). Le banc garde deux processus pour le service "
        "comme pour le plancher.",
        "- **Score d'une ligne** : environ 18 µs en Python (variables dérivées 4,9 µs, lecture "
        "des champs 3,2 µs, facteurs et tri 5 µs, probabilité 1,4 µs), le premier poste "
        "restant de l'application en processus ; l'écrire en code compilé ajouterait une "
        "extension à construire.",
        "- **Groupes plus grands à concurrence 32** (0.13.0, servi) : la requête qui trouve "
        "l'écriture au repos part seule, et une sur deux des écritures d'un processus est un "
        "groupe d'une prédiction (compté : 831 groupes de 1 et 818 de 16 sur un processus). "
        "La faire attendre une itération de la boucle porte les groupes de 6,4 à 9,2 "
        "prédictions (CPU de PostgreSQL 108 → 105 µs par prédiction), débit dans le bruit "
        "(4 072 contre 4 160/s) et concurrence 1 plus lente (1 087 contre 1 049/s) ; attendre "
        "tant que d'autres requêtes du processus sont en cours de préparation ne grossit pas "
        "les groupes (5,8). Non gardé.",
        "- **Index de la trace** (0.13.0) : retirer `ix_predictions_model_version_id` "
        "allégerait l'instruction d'une prédiction seule d'environ 10 µs (micro-banc, 3 × "
        "1 500 instructions) ; il sert la liste filtrée par version de modèle quand cette "
        "version est ancienne et rare : gardé.",
        "- **Un lot de 1 000 est borné par le Python d'un processus** (mesuré en 0.12.0, en "
        "processus) : environ 60 ms de CPU pour 72 ms de bout en bout ; copie des lignes "
        "(`write_row`) et explications (dictionnaires des facteurs) en tête, puis validation "
        "(6,6 ms), signatures, rendu de la réponse (3 ms) et libération des objets du lot "
        "après la validation (environ 3 ms). Sérialiser la réponse pendant que PostgreSQL "
        "vérifie les sorties n'a rien changé (3 × 20 lots alternés) : le processus n'y est "
        "pas inactif, il formate les lignes copiées. Libérer les objets du lot seulement après "
        "l'envoi de la réponse (gardés par le `scope`) : plus lent servi (médianes 79 à 84 "
        "contre 72 à 75 ms, 4 alternances de 15 lots), la libération retardant la fin de "
        "l'envoi et la requête suivante. Python 3.12 au lieu de 3.11 : même CPU par requête "
        "à concurrence 32 (157 contre 160 µs, en processus).",
        "- **Mesure** : placer le générateur de charge sur une autre machine. L'état de la "
        "machine ne touche pas le service et le plancher de la même façon : entre les "
        "exécutions `71bae97` (0.12.0) et `56ccd06` (0.13.0), le CPU du service par "
        "prédiction à concurrence 32 est passé de 276 à 302–314 µs quand celui du plancher "
        "restait à 96–98 µs, alors que, sur un même serveur neuf en alternance (6 × 5 000 "
        "requêtes), le code de 0.13.0 prend moins de CPU que celui de 0.12.0 (314 contre "
        "325 µs, 3 822 contre 3 686 prédictions/s). Un rapport au plancher mesuré une fois "
        "porte donc aussi l'état de la machine (caches partagés, voisins) à ce moment.",
        "",
        "## Régénérer ces chiffres",
        "",
        "```bash",
        "make bench                                  # quelques minutes ; écrit bench/results/",
        "make bench BENCH_ARGS=--no-profile          # sans le profil py-spy",
        ".venv/bin/python bench/run.py --help        # paliers, nombre de requêtes, processus…",
        ".venv/bin/python bench/report.py            # régénère cette page depuis le dernier JSON",
        "make bench-scale                            # trace de 10 k, 1 M, 10 M prédictions",
        "make bench-scale SCALE_ARGS='--sizes 10000,100000 --predict-rows 100000'",
        ".venv/bin/python bench/inprocess.py        # CPU par prédiction, application seule",
        "```",
        "",
        "Le banc d'essai démarre tout dans un dossier temporaire (PostgreSQL embarqué, données "
        "TechNova, un modèle entraîné, une clé `predicteur`), n'envoie de requêtes qu'à "
        "127.0.0.1, borne chaque palier en nombre de requêtes et en durée, puis arrête tout. "
        "Les résultats bruts sont dans `bench/results/`, le dernier tableau dans "
        "`bench/results/latest.md`.",
        "",
    ]
    DOC.write_text("\n".join(doc))
    return [LATEST, DOC, PLOT]


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else latest_results()
    for written in render(path.resolve()):
        print(f"› Écrit : {written.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
