"""The rule-change impact report (issue 21): the diff of two sides' canonical outputs (devstack/impact_child.py),
as JSON for tools and as French text for clinicians, and the CI gate on critical alerts. Pure: no I/O but reading
the two sides' files.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

#: kinds of change of one decision (a rule about one subject: an alert key, a plan item), most serious first
KINDS: Final = (
    "disappear",
    "appear",
    "severity",
    "critical_time",
    "dose_schedule",
    "status",
    "text",
    "shown_disappear",
    "shown_appear",
)
FR: Final = {
    "disappear": "disparaissent",
    "appear": "apparaissent",
    "severity": "changent de gravité",
    "critical_time": "deviennent critiques, ou cessent de l'être, à un autre moment",
    "dose_schedule": "changent de dose ou de rythme",
    "status": "changent de statut",
    "text": "changent de texte",
    "shown_disappear": "ne seraient plus affichées",
    "shown_appear": "seraient affichées en plus",
}
SEVERITY_FR: Final = {"critical": "critique", "warning": "avertissement", "info": "info"}
#: examples kept per rule and kind
EXAMPLES: Final = 3
HAZ_ENTRY: Final = re.compile(r"^### (HAZ-[\w-]+) .*$", re.M)
RULES_LINE: Final = re.compile(r"\*\*Rules:\*\* (.+)")


def read_side(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _view(d: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a reader needs of one decision on one side."""
    if d is None:
        return None
    return {
        "severities": d["severities"],
        "statuses": d["statuses"],
        "final": d["final"],
        "orders": d["orders"],
        "shown": d["shown"],
        "text": d["last"],
        "title": d.get("title", ""),
        "first_at": d["first_at"],
        "critical_at": d.get("critical_at", ""),
        "ended_at": d.get("ended_at", ""),
    }


def decision_changes(b: dict[str, Any] | None, c: dict[str, Any] | None) -> list[str]:
    """The kinds of change between one decision's base and candidate forms (empty: the same)."""
    if b is None and c is None:
        return []
    if b is None:
        return ["appear"] + (["shown_appear"] if c and c["shown"] else [])
    if c is None:
        return ["disappear"] + (["shown_disappear"] if b["shown"] else [])
    kinds = []
    if b["severities"] != c["severities"]:
        kinds.append("severity")
    critical = "critical" in b["severities"] and "critical" in c["severities"]
    if critical and (b.get("critical_at"), b.get("ended_at")) != (c.get("critical_at"), c.get("ended_at")):
        kinds.append("critical_time")
    if b["orders"] != c["orders"]:
        kinds.append("dose_schedule")
    if b["statuses"] != c["statuses"] or b["final"] != c["final"]:
        kinds.append("status")
    if b["texts"] != c["texts"]:
        kinds.append("text")
    if b["shown"] and not c["shown"]:
        kinds.append("shown_disappear")
    if c["shown"] and not b["shown"]:
        kinds.append("shown_appear")
    return kinds


def critical_loss(b: dict[str, Any] | None, c: dict[str, Any] | None) -> str | None:
    """A critical decision removed ('removed'), no longer critical ('downgraded'), a critical alert no longer
    shown ('no_longer_shown'), first critical later than in the base ('delayed'), or withdrawn sooner
    ('shortened'); None otherwise."""
    if b is None or "critical" not in b["severities"]:
        return None
    if c is None:
        return "removed"
    if "critical" not in c["severities"]:
        return "downgraded"
    if b["shown_critical"] and not c["shown_critical"]:
        return "no_longer_shown"
    # critical in both, but first critical later in the candidate: the emergency is alerted later (the times are the
    # decisions' input times, one clock for both sides)
    if _when(c.get("critical_at")) > _when(b.get("critical_at")):
        return "delayed"
    # critical in both, withdrawn sooner in the candidate: the emergency stops being alerted earlier
    if _when(c.get("ended_at"), never=True) < _when(b.get("ended_at"), never=True):
        return "shortened"
    return None


def _when(at: str | None, never: bool = False) -> datetime:
    """An ISO time (a decision's recorded_at); when empty the earliest time (a start never known: never a delay), or
    with `never` the latest (an end that never came)."""
    if not at:
        return (datetime.max if never else datetime.min).replace(tzinfo=UTC)
    t = datetime.fromisoformat(at)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _rekeyed(b: dict[str, Any], base: dict[str, Any], candidate: dict[str, Any]) -> bool:
    """A critical decision gone from the candidate reappears there, critical, under a new subject of the same rule
    decided by one of the same inputs."""
    inputs = {i["id"] for i in b["inputs"]}
    return any(
        key not in base
        and c["rule"] == b["rule"]
        and "critical" in c["severities"]
        and inputs & {i["id"] for i in c["inputs"]}
        for key, c in candidate.items()
    )


def diff(base: Iterable[dict[str, Any]], candidate: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The report's JSON: patients whose advice changes, per rule and kind the decisions and patients with
    examples, the shown alerts that change, and every critical alert removed or downgraded (first)."""
    rules: dict[str, dict[str, dict[str, Any]]] = defaultdict(
        lambda: defaultdict(lambda: {"decisions": 0, "patients": set(), "examples": []})
    )
    critical: list[dict[str, Any]] = []
    changed: set[str] = set()
    shown_changed: set[str] = set()
    dead: dict[str, int] = {"base": 0, "candidate": 0}
    n = 0
    for pb, pc in zip(base, candidate, strict=True):
        if pb["patient"] != pc["patient"]:
            raise ValueError(f"the two sides' patients differ: {pb['patient']} / {pc['patient']}")
        n += 1
        patient = pb["patient"]
        dead["base"] += pb["dead_letters"]
        dead["candidate"] += pc["dead_letters"]
        db, dc = pb["decisions"], pc["decisions"]
        if db == dc:  # the same decisions (most patients): no kind of change (decision_changes(d, d) is empty)
            continue
        for key in sorted(set(db) | set(dc)):
            b, c = db.get(key), dc.get(key)
            kinds = decision_changes(b, c)
            if not kinds:
                continue
            changed.add(patient)
            one = b or c
            assert one is not None
            rule = one["rule"]
            inputs = sorted(
                {i["id"]: i["name"] for i in (b or {}).get("inputs", []) + (c or {}).get("inputs", [])}.items()
            )
            example = {
                "patient": patient,
                "kind": one["kind"],
                "subject": one["subject"],
                "before": _view(b),
                "after": _view(c),
                "inputs": [{"id": i, "name": name} for i, name in inputs],
            }
            if any(k.startswith("shown_") for k in kinds):
                shown_changed.add(patient)
            for kind in kinds:
                cell = rules[rule][kind]
                cell["decisions"] += 1
                cell["patients"].add(patient)
                if len(cell["examples"]) < EXAMPLES and patient not in {e["patient"] for e in cell["examples"]}:
                    cell["examples"].append(example)
            loss = critical_loss(b, c)
            if loss == "removed" and b is not None and _rekeyed(b, db, dc):
                loss = None  # the same critical decision under another subject (a renamed alert key)
            if loss:
                critical.append({"rule": rule, "loss": loss} | example)
    return {
        "patients": n,
        "patients_changed": len(changed),
        "patients_changed_shown": len(shown_changed),
        "changed_patients": sorted(changed),
        "critical_lost": critical,
        "dead_letters": dead,
        "rules": {
            rule: {
                kind: {
                    "decisions": cell["decisions"],
                    "patients": len(cell["patients"]),
                    "patient_ids": sorted(cell["patients"]),
                    "examples": cell["examples"],
                }
                for kind, cell in sorted(kinds.items(), key=lambda kv: KINDS.index(kv[0]))
            }
            for rule, kinds in sorted(rules.items())
        },
    }


def patients_with(report: dict[str, Any], rule: str, kinds: Iterable[str] = KINDS) -> set[str]:
    """The patients with a change of one of `kinds` in `rule`'s decisions."""
    cells = report["rules"].get(rule, {})
    return {p for k in kinds for p in cells.get(k, {}).get("patient_ids", [])}


# ---- the hazard log and the CI gate ----------------------------------------------------------------------------
def hazard_entries(text: str) -> dict[str, str]:
    """HAZ ID -> its body (as tests/test_hazard_log.py reads docs/hazard-log.md)."""
    parts = HAZ_ENTRY.split(text)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def entry_rules(body: str) -> set[str]:
    m = RULES_LINE.search(body)
    return {r for r in re.split(r",\s*", m.group(1).strip())} if m else set()


def rules_with_changed_hazard(before: str, after: str) -> set[str]:
    """The rule IDs named on the Rules line of a HAZ entry added, changed or removed between two hazard logs."""
    b, a = hazard_entries(before), hazard_entries(after)
    out: set[str] = set()
    for haz in set(b) | set(a):
        if b.get(haz) != a.get(haz):
            out |= entry_rules(b.get(haz, "")) | entry_rules(a.get(haz, ""))
    return out


def gate(report: dict[str, Any], hazard_rules: set[str]) -> list[dict[str, Any]]:
    """The critical losses that block CI: those whose rule has no HAZ entry changed in the same diff."""
    return [x for x in report["critical_lost"] if x["rule"] not in hazard_rules]


# ---- French text for clinicians ---------------------------------------------------------------------------------
#: the structured orders' codes (contracts/plan.py MedicationOrder) as a clinician reads them
DRUGS_FR: Final = {
    "zoledronic_acid": "acide zolédronique",
    "denosumab": "dénosumab",
    "cholecalciferol": "cholécalciférol (vitamine D3)",
    "paracetamol": "paracétamol",
}
ROUTES_FR: Final = {"intravenous": "IV", "subcutaneous": "SC", "oral": "per os"}
UNITS_FR: Final = {"[iU]": "UI", "mg": "mg", "g": "g", "ug": "µg"}
ORDER: Final = re.compile(r"^(\S+) (\S+) (\S+) (\S+) /(\S+)(?: x(\d+))?(?: (\S+))?$")
PERIOD: Final = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?)?$")
PERIOD_FR: Final = (("an", "ans"), ("mois", "mois"), ("semaine", "semaines"), ("jour", "jours"), ("heure", "heures"))


def _untranslated(code: str) -> str:
    return f"« {code} » (libellé non traduit)"


def _vocabulary() -> Any:
    """The clinicians' page vocabulary (services/notification/vocabulary.py: pure), for statuses and data names."""
    from services.notification import vocabulary

    return vocabulary


def _period(iso: str) -> str:
    """An ISO 8601 duration in French: P4W "4 semaines", PT8H "8 heures"."""
    m = PERIOD.match(iso)
    if m is None or not any(m.groups()):
        return _untranslated(iso)
    parts = [
        f"{n} {PERIOD_FR[i][0] if n == '1' else PERIOD_FR[i][1]}" for i, n in enumerate(m.groups()) if n is not None
    ]
    return " ".join(parts)


def order_fr(order: str) -> str:
    """A structured order (impact_child._order) in French: "acide zolédronique 4 mg IV, toutes les 4 semaines"."""
    m = ORDER.match(order)
    if m is None:
        return _untranslated(order)
    drug, dose, unit, route, interval, count, duration = m.groups()
    try:
        amount = f"{float(dose):g}".replace(".", ",")
    except ValueError:
        amount = dose
    out = (
        f"{DRUGS_FR.get(drug) or _untranslated(drug)} {amount} {UNITS_FR.get(unit, unit)} "
        f"{ROUTES_FR.get(route) or _untranslated(route)}, intervalle {_period(interval)}"
    )
    if count:
        out += f", {count} prises"
    if duration and duration != "None":
        out += f", pendant {_period(duration)}"
    return out


def status_fr(code: str) -> str:
    v = _vocabulary()
    return str(v.ALERT_STATUSES.get(code) or v.ITEM_STATUSES.get(code) or _untranslated(code))


def _sev(v: dict[str, Any] | None) -> str:
    if v is None:
        return "absente"
    return "/".join(SEVERITY_FR.get(s, s) for s in v["severities"]) or "retirée"


def _side(v: dict[str, Any] | None) -> str:
    if v is None:
        return "absente"
    statuses = "/".join(status_fr(s) for s in v["statuses"]) or "-"
    out = f"{_sev(v)}, statut {statuses} (en dernier : {status_fr(v['final']) if v['final'] else '-'})"
    if v["orders"]:
        out += "; prescriptions : " + " | ".join(order_fr(o) for o in v["orders"])
    out += "; affichée" if v["shown"] else "; jamais affichée"
    return out


def subject_fr(e: dict[str, Any]) -> str:
    """What the decision is, in French: the alert or the plan item by its (French) title, and where it is."""
    title = (e["after"] or {}).get("title") or (e["before"] or {}).get("title") or ""
    if e["kind"] == "alert":
        what = "alerte"
    elif e["subject"].startswith("plan:"):
        what = "élément du plan systémique"
    elif e["subject"].startswith("local:patient:"):
        what = "élément du plan local (patient)"
    else:
        what = f"élément du plan local, lésion {e['subject'].split(':')[1]}"
    return f"{what} « {title} »" if title else what


def _example(e: dict[str, Any], indent: str) -> list[str]:
    lines = [f"{indent}- patient {e['patient']}, {subject_fr(e)}"]
    lines.append(f"{indent}    avant : {_side(e['before'])}")
    lines.append(f"{indent}    après : {_side(e['after'])}")
    tb, ta = (e["before"] or {}).get("text"), (e["after"] or {}).get("text")
    if tb and ta and tb != ta:
        lines.append(f"{indent}    texte avant : {tb[:300]}")
        lines.append(f"{indent}    texte après : {ta[:300]}")
    elif tb or ta:
        lines.append(f"{indent}    texte : {(tb or ta or '')[:300]}")
    if e["inputs"]:
        names = _vocabulary().name
        ids = ", ".join(f"{names(i['name'])} {i['id']}" for i in e["inputs"][:6])
        lines.append(f"{indent}    entrées décisives (ID) : {ids}")
    return lines


def french(report: dict[str, Any], head: dict[str, Any]) -> str:
    """The clinicians' summary: critical losses first, then per rule, then the shown alerts."""
    lines = [
        f"Impact du changement de règles : base {head['base']} -> candidat {head['candidate']}"
        + (
            f" (réglages du candidat : {json.dumps(head['settings'], ensure_ascii=False)})"
            if head.get("settings")
            else ""
        ),
        f"Historique rejoué : {head['source']} ; {head['events']} événements d'entrée ; {head['wall_s']:.0f} s"
        f" (base {head['cpu_s']['base']:.0f} s CPU, candidat {head['cpu_s']['candidate']:.0f} s CPU).",
        f"Patients dont les conseils changent : {report['patients_changed']} sur {report['patients']} "
        f"(dont {report['patients_changed_shown']} dont les alertes affichées changent).",
    ]
    reused = head.get("reused") or {}
    if reused.get("services"):
        names = ", ".join(_vocabulary().PRODUCERS.get(n, n) for n in reused["services"])
        if not reused.get("candidate_run"):
            lines.append(
                "Code de décision identique pour chaque service et aucun réglage changé : le candidat décide comme la "
                "base (mêmes entrées, même code), il n'est pas rejoué."
            )
        else:
            again = {n: k for n, k in (reused.get("live_again") or {}).items() if k}
            how = (
                " : seuls les services dont les entrées diffèrent rejouent, "
                + ", ".join(f"{_vocabulary().PRODUCERS.get(n, n)} {k}" for n, k in sorted(again.items()))
                if again
                else " entièrement"
            )
            lines.append(
                f"Code de décision identique des deux côtés : {names} ; leurs décisions sont reprises de la base pour "
                f"les patients dont leurs entrées sont identiques ({reused.get('patients_run_again', 0)} patients "
                f"rejoués{how})."
            )
    if reused.get("base_kept"):
        lines.append(
            "Base reprise d'une exécution précédente (même code de la base, même cohorte, mêmes paquets) : elle "
            "n'est pas rejouée (--no-cache pour la rejouer)."
        )
    derived = reused.get("base_derived_from")
    if derived:  # stop 37: the base derived from a kept one (devstack/impact_sides.py `derive_base`)
        names = ", ".join(_vocabulary().PRODUCERS.get(n, n) for n in derived.get("services", []))
        lines.append(
            "Base dérivée d'une base conservée d'une autre révision : seuls les services dont le code diffère ont été "
            f"rejoués (repris de cette base : {names}) ; elle est conservée pour les exécutions suivantes "
            "(--no-cache pour la rejouer entière)."
        )
    crit = report["critical_lost"]
    if crit:
        what = {
            "removed": "supprimée",
            "downgraded": "abaissée",
            "no_longer_shown": "plus affichée",
            "delayed": "critique plus tard",
            "shortened": "retirée plus tôt",
        }
        lines.append(f"!! ALERTES CRITIQUES SUPPRIMÉES, ABAISSÉES, RETARDÉES OU ÉCOURTÉES : {len(crit)}")
        for e in crit[:20]:
            lines.append(f"  {e['rule']} {what[e['loss']]} :")
            lines += _example(e, "  ")
        if len(crit) > 20:
            lines.append(f"  ... et {len(crit) - 20} autres (voir le JSON)")
    else:
        lines.append("Aucune alerte critique supprimée, abaissée, retardée ni écourtée.")
    if report["dead_letters"]["base"] != report["dead_letters"]["candidate"]:
        d = report["dead_letters"]
        lines.append(f"Messages refusés (lettres mortes) : base {d['base']}, candidat {d['candidate']}.")
    if not report["rules"]:
        lines.append("Aucun changement : les deux versions décident la même chose pour chaque patient.")
        return "\n".join(lines) + "\n"
    lines.append("Par règle (décisions ; patients) :")
    for rule, kinds in report["rules"].items():
        parts = [f"{FR[k]} {c['decisions']} ; {c['patients']} patients" for k, c in kinds.items()]
        lines.append(f"  {rule} : " + " ; ".join(parts))
        for k, c in kinds.items():
            lines.append(f"    exemples ({FR[k]}) :")
            for e in c["examples"]:
                lines += _example(e, "      ")
    shown = {
        rule: {k: c["patients"] for k, c in kinds.items() if k.startswith("shown_")}
        for rule, kinds in report["rules"].items()
    }
    shown = {r: s for r, s in shown.items() if s}
    lines.append("Alertes affichées aux cliniciens (critiques, ou passé le délai de confirmation) qui changent :")
    if not shown:
        lines.append("  aucune.")
    for rule, s in shown.items():
        lines.append(f"  {rule} : " + " ; ".join(f"{FR[k]} chez {n} patients" for k, n in s.items()))
    return "\n".join(lines) + "\n"
