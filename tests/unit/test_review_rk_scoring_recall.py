"""Review RK (HAZ-22-ORDER-03, e1567e3): `recall_published` after a rebuild whose decision differs from what the live
service last published for a score (a rebuild runs new decision code over the same events; rebuild.py re-sends a
replay output only when its ID is not already on the topic). The state must then never claim that downstream holds
what it does not: the next decision of the score republishes it (naming the withdrawal the page holds), or withdraws
the version the page still holds, and the page ends with what scoring decides."""

from __future__ import annotations

from contracts.clinical import Score
from contracts.topics import SCORES
from services.notification.domain import AlertPolicy, PatientAlerts
from services.notification.domain import apply_event as notify
from services.scoring.domain import current_scores, recall_published
from tests.unit.test_score_no_longer_decided import NOW, PATIENT, entered_in_error, finding, pain, scoring, sins


def _topic(out: list[Score]) -> list[tuple[str, bytes]]:
    return [(SCORES.name, x.model_dump_json().encode()) for x in out]


def _page(versions: list[Score]) -> PatientAlerts:
    page = PatientAlerts()
    for x in versions:
        page, _ = notify(page, x, AlertPolicy())
    return page


def test_a_score_the_rebuild_decides_after_the_live_service_withdrew_it_reaches_the_page_again() -> None:
    """Live: SINS published (its content ID), then withdrawn. The rebuild decides the same SINS (its output has the
    content ID, already on the topic: not re-sent). Recalled, the state named the withdrawal as the version in force
    with the content still 'published': the page kept no SINS while scoring showed one (a right score dropped)."""
    seen = finding(0)
    _, live_out = scoring([pain(0, "mechanical"), seen, entered_in_error(seen, 30)])
    first, gone = sins(live_out)
    assert gone.status == "withdrawn"
    rebuilt, replay_out = scoring([pain(0, "mechanical"), seen])  # the rebuild's decision: SINS in force
    [replayed] = sins(replay_out)
    assert replayed.event_id == first.event_id  # held on the topic: rebuild.py does not send it again
    recalled = recall_published(rebuilt, _topic(live_out))
    # the next event of the lesion (same content): scoring must make the page hold its SINS again
    _, after = scoring([pain(40, "mechanical")], recalled)
    page = _page([first, gone, *sins(after)])
    [shown] = [x for x in current_scores(recalled, PATIENT, now=NOW) if x.score == "sins" and x.subject == "t8"]
    held = page.scores.get("sins:t8")
    assert held is not None, "scoring decides a SINS, the page holds none"
    assert (held.total, held.band) == (shown.total, shown.band)


def test_a_score_the_live_service_published_but_the_rebuild_no_longer_decides_is_withdrawn() -> None:
    """Live: SINS published. The rebuild decides none for the lesion (here: the finding it came from entered in error
    in the replay only). Recalled, the state named the live version but held no content for the slot, so no decision
    ever withdrew it: the page kept a score scoring no longer decides (a wrong score kept)."""
    seen = finding(0)
    _, live_out = scoring([pain(0, "mechanical"), seen])
    [first] = sins(live_out)
    rebuilt, replay_out = scoring([pain(0, "mechanical"), seen, entered_in_error(seen, 30)])
    topic = _topic(live_out)  # the replay's outputs: its SINS (held) and its withdrawal (sent: a new ID)
    recalled = recall_published(rebuilt, topic + _topic([x for x in sins(replay_out) if x.status == "withdrawn"]))
    page = _page([first, *[x for x in sins(replay_out) if x.status == "withdrawn"]])
    assert "sins:t8" not in page.scores  # the ordinary case: the replay's withdrawal reaches the page
    # the rebuild's own outputs lack the withdrawal (the replay never decided the score): only the live version
    never, never_out = scoring([pain(0, "mechanical"), finding(0, skeletal_site="femur_shaft", vertebral_level=None)])
    assert not sins(never_out)
    recalled = recall_published(never, topic)
    _, after = scoring([pain(40, "mechanical")], recalled)
    page = _page([first, *sins(after)])
    decided = [x for x in current_scores(recalled, PATIENT, now=NOW) if x.score == "sins" and x.subject == "t8"]
    assert not decided
    assert "sins:t8" not in page.scores, "scoring decides no SINS for t8, the page still holds the live one"


def test_a_score_whose_last_version_downstream_has_other_content_than_the_rebuilds_is_published_again() -> None:
    """Live: SINS C (its content ID), then a version of other content D. The rebuild decides C (its output has C's
    content ID, already on the topic: not re-sent). Recalled, the state named D's version as in force for content C:
    scoring never published C again and the page kept D (a wrong score kept)."""
    seen = finding(0)
    stable = finding(60, alignment="normal", vertebral_collapse="none", posterolateral_involvement="none")
    _, live_out = scoring([pain(0, "mechanical"), seen, stable])
    first, other = sins(live_out)
    assert (first.total, first.band) != (other.total, other.band)
    rebuilt, replay_out = scoring([pain(0, "mechanical"), seen])  # the rebuild's decision: SINS C
    [replayed] = sins(replay_out)
    assert replayed.event_id == first.event_id  # held on the topic: not sent again
    recalled = recall_published(rebuilt, _topic(live_out))
    _, after = scoring([pain(40, "mechanical")], recalled)
    page = _page([first, other, *sins(after)])
    [shown] = [x for x in current_scores(recalled, PATIENT, now=NOW) if x.score == "sins" and x.subject == "t8"]
    held = page.scores.get("sins:t8")
    assert held is not None and (held.total, held.band) == (shown.total, shown.band), (held, shown)
