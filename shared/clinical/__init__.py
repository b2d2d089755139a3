"""The shared clinical context: the facts several services read, interpreted once (issue 18). Pure, no I/O.

- `life_expectancy`: what is left of a clinician's estimate, and the thresholds it crosses (SURG-LE, 3 months);
- `drugs`: drug identity (INN, ATC code, class) from a name or an ATC code; an unknown drug is said to be unknown;
- `irradiation`: the radiotherapy courses a segment has had (recorded and declared), EQD2, the newest course;
- `treatments`: which treatment events count once corrections and entries in error are applied;
- `recency`: how long a fact may be decided on (one default per fact, overridden by each service's settings).

No service re-derives these on its own: scoring, the systemic planner and the radiotherapy planner import them."""
