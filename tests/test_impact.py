"""Issue 21: the rule-change impact replay (devstack/impact.py). Each side runs in its own interpreter on its own
tree over the same generated cohort; these tests run real revisions of this repository (no mocks).

The expected patients of a threshold change are computed here from the cohort's own lab messages with the
guideline's formula and threshold (LAB-CA-CORR L316: corrected = measured + (40 - albumin g/L) / 40; LAB-CA-CRISIS
L304-306: crisis above 3.5 mmol/L), not from the tool's output."""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import shutil
import subprocess
import tempfile
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.hospital import LabResult
from devstack import impact, impact_report, impact_stream, impact_trees, infra
from devstack.cohort import Cohort
from devstack.impact_report import patients_with
from devstack.replay import MODULES
from tests import impact_shared

ROOT = Path(__file__).resolve().parents[1]
RULES = "services/scoring/rules.py"
CONSTANT = re.compile(r"^CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3\.5$", re.M)
#: LOINC codes of total calcium and the factor to mmol/L (mg/dL: x 10 / 40.08 g/mol), and of albumin
CALCIUM = {"2000-8": 1.0, "17861-6": 10 / 40.08}
ALBUMIN = "1751-7"
#: the cohort of the CI gate, WORKTREE and kept-base tests (in a throwaway repository, each run cold): patient
#: cohort-1-1 has a corrected calcium in (3.5, 3.96], one crisis lost is all they need (CI time: 13 before)
SMALL = 2


def calcium_values(cohort: Cohort, index: int) -> list[float]:
    """Every calcium value the services can have judged for this patient, in publication order: per specimen (its
    collection time), the corrected calcium whenever a calcium and an albumin are both known (L316), the measured
    total calcium while the albumin is not yet known; corrections replace a value, an entry in error removes it."""
    draws: dict[datetime, dict[str, float | None]] = {}
    out = []
    for g in cohort.patient(index):
        m = g.message
        if not isinstance(m, LabResult) or (m.code.code not in CALCIUM and m.code.code != ALBUMIN):
            continue
        d = draws.setdefault(m.occurred_at, {})
        if m.code.code in CALCIUM:
            d["ca"] = None if m.value is None else m.value * CALCIUM[m.code.code]
        else:
            d["alb"] = None if m.value is None else m.value * (10 if (m.unit or "").lower() == "g/dl" else 1)
        ca, alb = d.get("ca"), d.get("alb")
        if ca is not None:
            out.append(ca + (40 - alb) / 40 if alb is not None else ca)
    return out


def crossing(cohort: Cohort, low: float, high: float) -> set[str]:
    """Patients with a calcium value v with low < v <= high: a crisis under one threshold, not under the other."""
    return {
        cohort.patient_id(i) for i in range(cohort.patients) if any(low < v <= high for v in calcium_values(cohort, i))
    }


def candidate_tree(dest: Path, threshold: str) -> Path:
    """HEAD's tree with the crisis threshold changed (services/scoring/rules.py, LAB-CA-CRISIS)."""
    dest.mkdir()
    with subprocess.Popen(["git", "-C", str(ROOT), "archive", "HEAD"], stdout=subprocess.PIPE) as p:
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=p.stdout, check=True)
    rules = dest / RULES
    text, n = CONSTANT.subn(f"CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = {threshold}", rules.read_text())
    assert n == 1, "the crisis threshold constant moved: update this test"
    rules.write_text(text)
    return dest


def test_a_no_op_candidate_reports_zero_changes() -> None:
    """Both sides run every service (`full`): the decisions are deterministic."""
    report, text, _ = impact.impact("HEAD", "HEAD", patients=8, years=1, full=True)
    assert report["patients"] == 8
    assert report["reused"]["candidate_run"] and report["reused"]["services"] == []
    assert report["applications"]["base"] == report["applications"]["candidate"] > 8 * 50
    assert report["patients_changed"] == 0
    assert report["rules"] == {}
    assert report["critical_lost"] == []
    assert "Patients dont les conseils changent : 0 sur 8" in text
    # the same without `full`: every service's decision code is the same on both sides and no setting changes, so
    # the candidate is not run (same code, same inputs: same outputs), and the report says so (13 patients: the base
    # kept here is the one the systemic planner, setting and settle window tests take)
    quick, text, _ = impact.impact("HEAD", "HEAD", patients=13, years=1)
    assert not quick["reused"]["candidate_run"] and set(quick["reused"]["services"]) == set(MODULES)
    assert quick["patients_changed"] == 0 and quick["rules"] == {} and quick["critical_lost"] == []
    assert "il n'est pas rejoué" in text


def test_a_changed_crisis_threshold_lists_exactly_the_patients_whose_crisis_alert_changes() -> None:
    """HEAD against HEAD with the crisis threshold at 3.85 mmol/L, on 13 patients x 1 year (the runs are shared with
    tests/test_impact_again.py: tests/impact_shared.py)."""
    cohort = Cohort(1, impact_shared.PATIENTS, impact_shared.YEARS)
    expected = crossing(cohort, 3.5, 3.85)
    assert len(expected) >= 2, "the cohort has too few calcium values between the thresholds to test anything"
    report, text, full = impact_shared.crisis_runs()
    assert patients_with(report, "LAB-CA-CRISIS") == expected
    # only scoring's code differs: the other four services' decisions are taken from the base's run for the
    # patients whose records to them are the same, and the report is the one of both sides run in full
    assert report["reused"]["services"] == sorted(set(MODULES) - {"scoring"})
    assert 0 < report["reused"]["patients_run_again"] <= len(expected)
    # the gate (stop 36): a patient whose scoring did what the base taped, record by record, takes the base's outputs
    # (nothing downstream run); only a patient with a value between the thresholds can differ
    same = report["reused"]["patients_same_as_base"]
    assert impact_shared.PATIENTS - len(expected) <= same <= impact_shared.PATIENTS - 1
    assert same + report["reused"]["patients_run_again"] <= impact_shared.PATIENTS
    assert full["reused"]["services"] == [] and full["reused"]["patients_same_as_base"] == 0
    for key in ("patients_changed", "changed_patients", "critical_lost", "dead_letters", "rules"):
        assert report[key] == full[key], key
    # for clinicians: French, no service code (an underscored code, an English status) below the header line (which
    # names the candidate's directory)
    body = text.split("\n", 1)[1]
    assert not re.search(r"\b[a-z]+(?:_[a-z0-9]+)+\b|\b(?:withdrawn|not_indicated|to_do|cannot_decide)\b", body)
    assert "Calcémie corrigée" in body  # the inputs' names, in the page's vocabulary
    # raising the threshold only takes crises away: nothing appears, the critical ones lost are listed first
    assert patients_with(report, "LAB-CA-CRISIS", ["appear", "shown_appear"]) == set()
    lost = {x["patient"] for x in report["critical_lost"] if x["rule"] == "LAB-CA-CRISIS"}
    assert lost and lost <= expected
    assert text.index("ALERTES CRITIQUES SUPPRIMÉES") < text.index("Par règle")
    for x in report["critical_lost"]:
        assert x["inputs"] and all(re.fullmatch(r"[0-9a-f-]{36}", i["id"]) for i in x["inputs"])


#: 25-OH vitamin D: LOINC code -> factor to ng/mL (nmol/L / 2.496)
VITAMIN_D = {"1989-3": 1.0, "62292-8": 1 / 2.496}
SEVERE = re.compile(r"^VITD_SEVERE_NG_ML: Final = 10\.0$", re.M)


def test_a_changed_systemic_planner_threshold_lists_exactly_the_patients_it_concerns(tmp_path: Path) -> None:
    """A second rule, in another service: the severe vitamin D deficiency cut-off of the systemic planner (Tableau 1
    L825, < 10 ng/mL; SYS-VITD-CORR) raised to 15 ng/mL. Expected, from the cohort's own lab results: the patients
    with an exact vitamin D level in [10, 15) ng/mL (severe under the candidate only). Scoring, both other services
    and lab-normalisation are reused from the base where their records are the same."""
    cohort = Cohort(1, 13, 1)
    expected = set()
    for i in range(cohort.patients):
        for g in cohort.patient(i):
            m = g.message
            if not isinstance(m, LabResult) or m.code.code not in VITAMIN_D or m.value is None or m.comparator:
                continue
            if 10 <= m.value * VITAMIN_D[m.code.code] < 15:  # exact levels only (a censored one decides by band)
                expected.add(cohort.patient_id(i))
    assert len(expected) >= 2, "the cohort has too few vitamin D levels between the cut-offs to test anything"
    tree = candidate_tree(tmp_path / "candidate", "3.5")
    rules = tree / "services" / "systemic_planner" / "rules.py"
    text, n = SEVERE.subn("VITD_SEVERE_NG_ML: Final = 15.0", rules.read_text())
    assert n == 1, "the severe vitamin D constant moved: update this test"
    rules.write_text(text)
    report, _, _ = impact.impact("HEAD", str(tree), patients=13, years=1, seed=1)
    assert set(report["changed_patients"]) == expected
    assert patients_with(report, "SYS-VITD-CORR") == expected
    assert set(report["rules"]) <= {"SYS-VITD-CORR", "SYS-AR-PREREQ"}
    assert report["reused"]["services"] == sorted(set(MODULES) - {"systemic-planner"})
    assert report["critical_lost"] == []


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A throwaway git repository whose first commit is HEAD's tree."""
    r = tmp_path / "repo"
    candidate_tree(r, "3.5")
    _git(r, "init", "-q")
    _git(r, "add", "-A")
    _git(r, "commit", "-qm", "base")
    return r


def test_ci_fails_on_a_critical_downgrade_unless_its_hazard_entry_changed(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(impact.BASE_ENV, raising=False)  # HEAD~1 -> HEAD (the CI runner may name another base)
    cohort = Cohort(1, SMALL, 1)
    assert crossing(cohort, 3.5, 3.96), "no crisis in the CI test's cohort"
    args = ["--ci", "--repo", str(repo), "--patients", str(SMALL), "--years", "1"]
    # a change that touches no rule file: said, nothing replayed
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nA line.\n")
    _git(repo, "commit", "-qam", "docs")
    assert impact.main(args) == 0
    assert "changes no rule or setting file" in capsys.readouterr().out
    # the crisis threshold raised above every crisis of the cohort, no hazard-log change: fails
    rules = repo / RULES
    rules.write_text(CONSTANT.sub("CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.96", rules.read_text()))
    _git(repo, "commit", "-qam", "threshold")
    assert impact.main(args) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "LAB-CA-CRISIS" in out and "ALERTES CRITIQUES SUPPRIMÉES" in out
    # the same change with the rule's hazard entry updated in the same diff: passes
    log = repo / "docs" / "hazard-log.md"
    text = log.read_text()
    entry = re.search(r"^### HAZ-[\w-]+ .*\n- \*\*Rules:\*\* [^\n]*LAB-CA-CRISIS[^\n]*\n", text, re.M)
    assert entry is not None
    log.write_text(text[: entry.end()] + "- Threshold raised to 3.96 mmol/L (test).\n" + text[entry.end() :])
    _git(repo, "commit", "-q", "--amend", "-am", "threshold, hazard entry updated")
    assert impact.main(args) == 0
    assert "hazard-log entry updated" in capsys.readouterr().out


def test_ci_compares_the_whole_change_not_only_its_last_commit(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push of two commits, the first raising the crisis threshold, the second touching only the README: HEAD~1 ->
    HEAD sees no rule change; the base the environment names (the commit before the push), or the merge-base with
    the upstream branch, takes in the whole change and the gate fails. Which base is used is printed."""
    monkeypatch.delenv(impact.BASE_ENV, raising=False)
    monkeypatch.delenv(impact.UPSTREAM_ENV, raising=False)
    first = _git(repo, "rev-parse", "HEAD").strip()
    rules = repo / RULES
    rules.write_text(CONSTANT.sub("CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.96", rules.read_text()))
    _git(repo, "commit", "-qam", "threshold")
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nA line.\n")
    _git(repo, "commit", "-qam", "docs")
    head = _git(repo, "rev-parse", "HEAD").strip()
    parent = _git(repo, "rev-parse", "HEAD~1").strip()
    args = ["--ci", "--repo", str(repo), "--patients", str(SMALL), "--years", "1"]
    # nothing names the change's base: the last commit alone, which changes no rule (said, with the base used)
    assert impact.ci_base(None, "HEAD", repo) == (parent, "HEAD~1")
    assert impact.main(args) == 0
    out = capsys.readouterr().out
    assert "(HEAD~1)" in out and "changes no rule or setting file" in out
    # the upstream branch at the commit before the push: its merge-base with HEAD
    _git(repo, "update-ref", "refs/remotes/origin/main", first)
    assert impact.ci_base(None, "HEAD", repo) == (first, "merge-base HEAD origin/main")
    # the upstream branch already at HEAD (the push is in it): not a base, HEAD~1 again
    _git(repo, "update-ref", "refs/remotes/origin/main", head)
    assert impact.ci_base(None, "HEAD", repo) == (parent, "HEAD~1")
    # --base wins over everything; an environment's base that this clone lacks is an error, not a silent HEAD~1
    assert impact.ci_base(first, "HEAD", repo) == (first, "--base")
    monkeypatch.setenv(impact.BASE_ENV, "f" * 40)
    with pytest.raises(SystemExit, match="not a commit of this clone"):
        impact.ci_base(None, "HEAD", repo)
    # the environment names the commit before the push: the threshold change is in the range, the gate fails
    monkeypatch.setenv(impact.BASE_ENV, first)
    assert impact.main(args) == 1
    out = capsys.readouterr().out
    assert f"({impact.BASE_ENV}={first})" in out and "services/scoring/rules.py" in out
    assert "FAILED" in out and "LAB-CA-CRISIS" in out


def test_a_side_gets_no_live_setting_and_can_open_no_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Isolation: a candidate whose scoring module checks for a live setting in its environment, then tries to reach
    a server on import: the setting is not there (the children get PATH, HOME, LANG only) and the connection is
    refused in the child, which fails loudly instead of touching a live system."""
    tree = candidate_tree(tmp_path / "candidate", "3.5")
    app = tree / "services" / "scoring" / "app.py"
    app.write_text(
        app.read_text()
        + "\nimport os as _os, socket as _socket\n"
        + "if 'CALCIUM_CURRENT_HOURS' in _os.environ:\n    raise RuntimeError('a live setting reached the replay')\n"
        + "_socket.create_connection(('127.0.0.1', 9))\n"
    )
    monkeypatch.setenv("CALCIUM_CURRENT_HOURS", "1")
    with pytest.raises(SystemExit, match="must not open a network connection"):
        impact.impact("HEAD", str(tree), patients=2, years=0.3)


def test_an_uncommitted_edit_is_the_candidate_with_worktree(repo: Path) -> None:
    """`--candidate WORKTREE`: the working tree as it is, uncommitted edits included, against HEAD."""
    rules = repo / RULES
    rules.write_text(CONSTANT.sub("CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.96", rules.read_text()))
    assert _git(repo, "status", "--porcelain").strip() == f"M {RULES}"
    report, text, _ = impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, patients=SMALL, years=1)
    assert set(report["changed_patients"]) == crossing(Cohort(1, SMALL, 1), 3.5, 3.96) != set()
    assert "candidat WORKTREE" in text


def test_a_setting_alone_lists_exactly_the_patients_it_concerns(tmp_path: Path) -> None:
    """A settings-only candidate, by its env-style name: `CALCIUM_CURRENT_HOURS: 24` (scoring: how long a crisis
    value stays current, LAB-CA-CRISIS; default 72 h). Every crisis episode of the cohort outlives both windows (the
    next calcium comes weeks later), and its stale-value warning names the window: the patients are exactly those
    with a corrected calcium above 3.5 mmol/L (L304-306), computed from the cohort's labs; no critical alert is lost
    (the crisis alert itself stays as it was issued)."""
    settings = tmp_path / "candidate.yaml"
    settings.write_text("CALCIUM_CURRENT_HOURS: 24\n")
    report, _, _ = impact.impact("HEAD", "HEAD", settings=impact.load_settings(str(settings)), patients=13, years=1)
    expected = crossing(Cohort(1, 13, 1), 3.5, float("inf"))
    assert len(expected) >= 2
    assert set(report["changed_patients"]) == expected
    assert set(report["rules"]) == {"LAB-CA-CRISIS"} and report["critical_lost"] == []
    assert report["reused"]["services"] == sorted(set(MODULES) - {"scoring"})


def test_a_side_writing_much_on_stderr_does_not_block(tmp_path: Path) -> None:
    """A side's stderr (warnings, a service's logs) goes to a file: 1 MB of it, more than a pipe holds, neither
    blocks the side nor the run."""
    tree = candidate_tree(tmp_path / "candidate", "3.5")
    app = tree / "services" / "scoring" / "app.py"
    app.write_text(app.read_text() + "\nimport sys as _sys\n_sys.stderr.write('x' * 1_000_000)\n")
    report, _, _ = impact.impact("HEAD", str(tree), patients=2, years=0.3, jobs=2)
    assert report["patients"] == 2 and report["patients_changed"] == 0


def test_candidate_settings_apply_to_the_candidate_only(tmp_path: Path) -> None:
    """A longer settle window (notification's `alert_settle_seconds`) changes only which alerts would be shown:
    the decisions are the same, and a critical alert is shown at once whatever the window."""
    report, text, _ = impact.impact(
        "HEAD", "HEAD", settings={"notification": {"alert_settle_seconds": 3600}}, patients=13, years=1
    )
    kinds = {k for cells in report["rules"].values() for k in cells}
    assert kinds and kinds <= {"shown_disappear"}
    # the service with a candidate setting is run, never taken from the base; the four others are reused
    assert report["reused"]["services"] == sorted(set(MODULES) - {"notification"})
    assert report["critical_lost"] == []
    assert "alert_settle_seconds" in text


async def test_from_topics_replays_the_retained_history_without_publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """--from-topics: the input topics' retained history, read with a group-less consumer; nothing is published. On a
    broker of its own, with no service running on it, so that any record on any topic afterwards would be the tool's
    (the suite's shared broker has the test stack's services publishing all along)."""
    from aiokafka import AIOKafkaProducer

    from contracts.topics import TOPICS
    from shared.runtime.kafka import ensure_topics
    from shared.settings import Settings

    with infra.local_kafka() as kafka:
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka.url)
        for k, v in kafka.settings.items():
            monkeypatch.setenv(k, v)
        settings = Settings.model_validate(
            {"kafka_bootstrap_servers": kafka.url, **{k.lower(): v for k, v in kafka.settings.items()}}
        )
        await ensure_topics(settings, TOPICS)
        cohort = Cohort(7, 3, 0.3)
        sent = {cohort.patient_id(i): [g.value() for g in cohort.patient(i)] for i in range(3)}
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.url, enable_idempotence=kafka.settings["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        )
        await producer.start()
        try:
            for i in range(3):
                for g in cohort.patient(i):
                    await producer.send_and_wait(g.topic, g.value(), key=g.key.encode())
        finally:
            await producer.stop()
        before = await _end_offsets(kafka.url)
        stream = Path(tempfile.mkdtemp()) / "stream.pickle"
        await asyncio.to_thread(impact_stream.write_topics, stream, False)
        with stream.open("rb") as f:
            header = pickle.load(f)
            read = dict(pickle.load(f) for _ in range(header["patients"]))
        for patient, values in sent.items():  # every message, in publication order
            assert [json.loads(r[2]) for r in read[patient]] == [json.loads(v) for v in values]
        report, _, _ = await asyncio.to_thread(impact.impact, "HEAD", "HEAD", from_topics=True)
        assert report["patients"] >= 3
        assert report["patients_changed"] == 0
        after = await _end_offsets(kafka.url)
        assert after == before and sum(after.values()) == sum(len(v) for v in sent.values())


async def _end_offsets(bootstrap: str) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from contracts.topics import TOPICS

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await c.start()
    try:
        known = await c.topics()
        parts = [
            TopicPartition(t.name, p)
            for t in TOPICS
            if t.name in known
            for p in sorted(c.partitions_for_topic(t.name) or ())
        ]
        return dict(await c.end_offsets(parts))
    finally:
        await c.stop()


def _decision(rule: str, subject: str, severity: str, inputs: list[str]) -> dict[str, Any]:
    return {
        "kind": "alert",
        "rule": rule,
        "subject": subject,
        "severities": [severity],
        "statuses": ["active"],
        "final": "active",
        "texts": ["t"],
        "orders": [],
        "shown": True,
        "shown_critical": severity == "critical",
        "first": "t",
        "last": "t",
        "first_at": "",
        "inputs": [{"id": i, "name": "corrected_calcium"} for i in inputs],
        "versions": 1,
    }


def test_a_renamed_alert_key_is_not_a_lost_critical_alert_but_other_inputs_are() -> None:
    """The diff itself (pure): a critical decision under a new subject, decided by the same input, is said as a
    disappearance and an appearance, not a critical loss; under a new subject with other inputs it is a loss."""
    old = _decision("LAB-CA-CRISIS", "scoring:crisis:a", "critical", ["lab-1"])

    def side(*decisions: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "patient": "p",
                "dead_letters": 0,
                "decisions": {f"alert|{d['rule']}|{d['subject']}": d for d in decisions},
            }
        ]

    renamed = impact_report.diff(
        side(old), side(_decision("LAB-CA-CRISIS", "scoring:calcium:a", "critical", ["lab-1"]))
    )
    assert renamed["critical_lost"] == []
    assert set(renamed["rules"]["LAB-CA-CRISIS"]) == {"disappear", "appear", "shown_disappear", "shown_appear"}
    other = impact_report.diff(side(old), side(_decision("LAB-CA-CRISIS", "scoring:calcium:b", "critical", ["lab-2"])))
    assert [x["loss"] for x in other["critical_lost"]] == ["removed"]
    downgraded = impact_report.diff(
        side(old), side(_decision("LAB-CA-CRISIS", "scoring:crisis:a", "warning", ["lab-1"]))
    )
    assert [x["loss"] for x in downgraded["critical_lost"]] == ["downgraded"]
    assert impact_report.gate(downgraded, {"LAB-CA-CRISIS"}) == []
    assert impact_report.gate(downgraded, {"RT-MSCC"}) == downgraded["critical_lost"]


def test_the_ci_step_replays_a_change_to_any_code_the_replay_runs() -> None:
    """Decisions are also made outside files named 'rules': notification's order rules, a service's app.py wiring of
    its transitions, lab-normalisation's parsers, the runtime's limits. A change to any code the replay runs starts
    the CI step; documentation, tests, the cohort generator and the pages' static files do not."""
    replayed = [
        "services/notification/orders_rules.py",
        "services/scoring/app.py",
        "services/lab_normalisation/hl7v2.py",
        "shared/runtime/limits.py",
        "contracts/hospital.py",
        "devstack/replay.py",
    ]
    others = ["README.md", "docs/hazard-log.md", "tests/test_impact.py", "devstack/cohort.py"]
    others.append("services/notification/static/page.js")
    assert impact.rule_files(replayed + others) == replayed


def test_a_critical_alert_raised_later_or_withdrawn_sooner_is_a_critical_loss() -> None:
    """The same critical decision, with the same texts, first critical a day later in the candidate (e.g. a
    threshold that only a later value crosses), or withdrawn sooner: the emergency is alerted later, or for less
    long. Each is listed with the critical losses (and the CI gate blocks it); raised earlier or withdrawn later, it
    is a change of timing but no loss."""
    base = _decision("LAB-CA-CRISIS", "scoring:crisis:a", "critical", ["lab-1"])
    base["critical_at"] = "2026-03-01T08:00:00+00:00"
    later = base | {"critical_at": "2026-03-02T08:00:00+00:00"}
    earlier = base | {"critical_at": "2026-02-28T08:00:00+00:00"}

    def side(d: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"patient": "p", "dead_letters": 0, "decisions": {f"alert|{d['rule']}|{d['subject']}": d}}]

    report = impact_report.diff(side(base), side(later))
    assert [x["loss"] for x in report["critical_lost"]] == ["delayed"]
    assert set(report["rules"]["LAB-CA-CRISIS"]) == {"critical_time"}
    assert impact_report.gate(report, set()) == report["critical_lost"]
    head = {
        "base": "a",
        "candidate": "b",
        "source": "s",
        "events": 1,
        "wall_s": 1.0,
        "cpu_s": {"base": 1, "candidate": 1},
    }
    assert "critique plus tard" in impact_report.french(report, head)
    sooner = impact_report.diff(side(base), side(earlier))
    assert sooner["critical_lost"] == [] and set(sooner["rules"]["LAB-CA-CRISIS"]) == {"critical_time"}
    # withdrawn sooner in the candidate (the same versions otherwise): the emergency stops being alerted earlier
    ended = base | {"ended_at": "2026-03-05T08:00:00+00:00"}
    shorter = ended | {"ended_at": "2026-03-03T08:00:00+00:00"}
    assert [x["loss"] for x in impact_report.diff(side(ended), side(shorter))["critical_lost"]] == ["shortened"]
    assert [x["loss"] for x in impact_report.diff(side(base), side(ended))["critical_lost"]] == ["shortened"]
    longer = impact_report.diff(side(shorter), side(ended))
    assert longer["critical_lost"] == [] and set(longer["rules"]["LAB-CA-CRISIS"]) == {"critical_time"}


def test_a_kept_base_gives_the_report_of_a_base_run_again(repo: Path) -> None:
    """Speed: the base of a run is kept under the repository's run folder (.run/impact-base), keyed on everything that
    decides its outputs; a later candidate against the same base and cohort takes it instead of running the base, and
    reports what a run of both sides reports. Another cohort, or a base whose code changed, is not taken from it."""
    rules = repo / RULES
    rules.write_text(CONSTANT.sub("CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.96", rules.read_text()))
    expected = crossing(Cohort(1, SMALL, 1), 3.5, 3.96)
    assert expected
    keys = ("patients_changed", "changed_patients", "critical_lost", "dead_letters", "rules")

    def run(**kw: Any) -> dict[str, Any]:
        return impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **({"patients": SMALL, "years": 1} | kw))[0]

    first = run()
    assert not first["reused"]["base_kept"] and first["cpu_s"]["base"] > 0
    assert set(first["changed_patients"]) == expected
    assert len(list((repo / impact_trees.CACHE).iterdir())) == 1
    kept = run()
    assert kept["reused"]["base_kept"] and kept["cpu_s"]["base"] == 0
    assert kept["reused"]["services"] == sorted(set(MODULES) - {"scoring"})
    fresh = run(cache=False)
    assert not fresh["reused"]["base_kept"]
    for key in keys:
        assert kept[key] == first[key] == fresh[key], key
    # another cohort (its size, then its seed): another base
    assert not run(patients=1)["reused"]["base_kept"]
    assert run(patients=1)["reused"]["base_kept"]
    assert not run(patients=1, seed=2)["reused"]["base_kept"]
    # the base's decision code changed (a comment in the shared runtime): not the kept base
    limits = repo / "shared" / "runtime" / "limits.py"
    limits.write_text(limits.read_text() + "\n# a change\n")
    _git(repo, "commit", "-qm", "runtime", "--", "shared/runtime/limits.py")
    changed = run()
    assert not changed["reused"]["base_kept"]
    assert changed["changed_patients"] == first["changed_patients"]


def test_a_kept_stream_is_used_again_only_for_its_cohort_and_generator(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Speed: the generated event stream is kept beside the kept base (.run/impact-stream), keyed on the cohort's
    seed, size, years and end, the sampling, the shards and the generator's code: a run against a kept base does not
    generate the cohort again (the same files, untouched) and reports the same; another seed, or a changed generator
    (its code: a copy of it with one more line), writes a stream of its own; a kept shard cut short is written
    again."""
    keys = ("patients", "patients_changed", "changed_patients", "critical_lost", "dead_letters", "rules", "events")

    def run(**kw: Any) -> dict[str, Any]:
        return impact.impact("HEAD", "HEAD", repo=repo, **({"patients": 2, "years": 0.5} | kw))[0]

    def kept() -> dict[Path, tuple[int, int]]:
        return {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (repo / impact_stream.STREAMS).glob("*/*.pickle")}

    first = run()
    streams = kept()
    assert len({f.parent for f in streams}) == 1 and streams
    again = run()
    assert again["reused"]["base_kept"] and kept() == streams  # neither the stream nor the base written again
    assert all(again[k] == first[k] for k in keys) and again["source"] == first["source"]
    other = run(seed=2)
    assert len({f.parent for f in kept()}) == 2 and not other["reused"]["base_kept"]
    # the generator's code changed: another key, the stream written again (here the same bytes: the running
    # generator is this checkout's, so the base kept for those bytes is taken)
    code = tmp_path / "generator"
    for rel in impact_stream.GENERATOR_CODE:
        src, dst = impact_stream.GENERATOR_ROOT / rel, code / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    (code / "devstack" / "cohort.py").write_text((code / "devstack" / "cohort.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(impact_stream, "GENERATOR_ROOT", code)
    changed = run()
    now = kept()
    assert len({f.parent for f in now}) == 3 and {f: now[f] for f in streams} == streams
    assert all(changed[k] == first[k] for k in keys)
    # a kept shard cut short (a disk full, an interrupted copy): not used, the stream written again whole
    monkeypatch.setattr(impact_stream, "GENERATOR_ROOT", impact_stream.ROOT)
    victim = sorted(streams)[0]
    whole = victim.read_bytes()
    victim.write_bytes(whole[:-10])
    repaired = run()
    assert all(repaired[k] == first[k] for k in keys) and repaired["reused"]["base_kept"]
    assert victim.read_bytes() == whole


def _kept_outputs(entry: Path) -> tuple[list[str], dict[str, Any]]:
    """A kept base's canonical outputs (lines) and its tapes (patient -> every service's applications)."""
    lines: list[str] = []
    tapes: dict[str, Any] = {}
    for out in sorted(entry.glob("base.*.jsonl")):
        lines += out.read_text(encoding="utf-8").splitlines()
    for tape in sorted(entry.glob("tape.*.pickle")):
        with tape.open("rb") as f:
            while True:
                try:
                    patient, blob = pickle.load(f)
                except EOFError:
                    break
                tapes[patient] = pickle.loads(zlib.decompress(blob))
    return sorted(lines), tapes


def _kept_as_cold(run: Any, entries: dict[str, Path], mine: Path) -> tuple[list[str], dict[str, Any]]:
    """What the kept base `mine` holds (`_kept_outputs`), checked against the same base run cold: every kept entry
    removed (no ancestor to derive from), `run()` keeps it again under the same key, byte for byte the same."""
    kept = _kept_outputs(mine)
    for entry in entries.values():
        shutil.rmtree(entry)
    cold = run()
    assert cold["reused"]["base_derived_from"] is None and not cold["reused"]["base_kept"]
    assert _kept_outputs(mine) == kept
    return kept


def test_a_base_not_kept_is_derived_from_a_kept_one_and_equals_a_cold_one(repo: Path) -> None:
    """Speed (stop 37): main moved on by a one-service change since its base was kept. The new base is not run whole:
    it is derived from the kept one (the services both trees share taken from its tape, impact_child.py `_complete`),
    its cost is reported, its report is a cold run's, and what it keeps (outputs and every service's tape) is exactly
    what a cold run of that base keeps; a later run takes it as any kept base."""
    rules = repo / RULES
    text = rules.read_text()
    rules.write_text(CONSTANT.sub("CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.96", text))
    kw: dict[str, Any] = {"patients": 6, "years": 1}

    def run(**more: Any) -> dict[str, Any]:
        return impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **(kw | more))[0]

    assert not run()["reused"]["base_kept"]  # HEAD (3.5) kept, cold
    _git(repo, "commit", "-qam", "crisis at 3.96")  # main moves on: scoring alone changed
    rules.write_text(CONSTANT.sub("CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.85", text))
    derived, said, _ = impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **kw)
    others = sorted(set(MODULES) - {"scoring"})
    assert derived["reused"]["base_derived_from"]["services"] == others
    assert "Base dérivée d'une base conservée" in said  # the French report says where its base came from
    assert not derived["reused"]["base_kept"] and derived["cpu_s"]["base"] > 0
    cold = run(cache=False)
    assert cold["reused"]["base_derived_from"] is None
    keys = ("patients_changed", "changed_patients", "critical_lost", "dead_letters", "rules")
    for key in keys:
        assert derived[key] == cold[key], key
    again = run()
    assert again["reused"]["base_kept"] and again["cpu_s"]["base"] == 0
    assert all(again[key] == cold[key] for key in keys)
    # kept: the first base (3.5), the one derived from it (3.96), and the candidate (3.85, no settings) in turn
    entries = {e.name: e for e in (repo / impact_trees.CACHE).iterdir() if not e.name.startswith(".")}
    ancestor = derived["reused"]["base_derived_from"]["base"]
    came = {
        n: json.loads((e / "stats.json").read_text(encoding="utf-8")).get("derived_from") for n, e in entries.items()
    }
    assert len(entries) == 3 and came[ancestor] is None
    (mine,) = (entries[n] for n, d in came.items() if d and d["base"] == ancestor)
    how = json.loads((mine / "stats.json").read_text(encoding="utf-8"))
    # both ways a patient goes were taken: the base's tape whole (the gate), and run again (`_again`)
    assert how["same_as_base"] >= 1 and how["reruns"] >= 1 and how["live_again"]["notification"] >= 1
    # the candidate merged: its base is kept already, nothing runs for it
    _git(repo, "commit", "-qam", "crisis at 3.85")
    merged = run()
    assert merged["reused"]["base_kept"] and merged["cpu_s"]["base"] == 0 and merged["patients_changed"] == 0
    # what the derived base keeps is what the same base run cold keeps
    _git(repo, "checkout", "-q", "HEAD~1", "--", RULES)
    _git(repo, "commit", "-qam", "back to 3.96")
    kept = _kept_as_cold(run, entries, mine)
    assert kept[1] and all(set(t) <= set(MODULES) for t in kept[1].values())
