#!/usr/bin/env python3
"""How much execution signal the guided attempts of a bench database were
shown (issue 14: before EG-CFG is judged against sampling, check that its
guided lines were guided at all).

    scripts/signal-stats.py DB

One line per EG-CFG run (`egcfg` and `sample-then-egcfg`), in run order,
over the guided attempts (gamma above 0) of its finished tasks:

- refreshes: signal rebuilds (one per new line at k 1);
- no signal: the share of refreshes that left the next line without
  guidance (written exactly as the unguided stream would write it), and in
  brackets the share where runs were traced but not one (candidate, test)
  run fit the block's token cap (the rest had nothing to trace: no
  candidate line could be run);
- runs shown: the mean number of runs in the block, and of runs traced, over
  the refreshes that had a signal;
- same as greedy: guided attempts whose program is, character for character,
  the greedy (gamma 0) program of the same prompt style in the same task.

`egcfg report` gives the no-signal share of runs recorded since it was
counted; this script reads it from the records, older runs included.
The signal cap, layout and events per trace are the run's config
(`decode.signal_max_tokens`, `decode.signal_layout`,
`decode.render_limits.max_events`). Standard library only.
"""

import json
import sqlite3
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    runs = db.execute(
        "select id, method, config_hash, config from runs "
        "where method in ('egcfg', 'sample-then-egcfg') order by id"
    ).fetchall()
    print(
        "run  method             config            budget  cap  layout       events"
        "  tasks  guided  refreshes  no signal (none fit)  runs shown/traced  same as greedy"
    )
    for run_id, method, config_hash, config in runs:
        config = json.loads(config)
        decode = config.get("decode", {})
        stats = {"tasks": 0, "guided": 0, "refreshes": 0, "empty": 0,
                 "unfit": 0, "shown": 0, "traced": 0, "same": 0}
        query = "select records from results where run_id = ?"
        for (records,) in db.execute(query, (run_id,)):
            count(json.loads(records), stats)
        with_signal = stats["refreshes"] - stats["empty"]
        refreshes = max(stats["refreshes"], 1)
        empty, unfit = stats["empty"] / refreshes, stats["unfit"] / refreshes
        shown = (
            f"{stats['shown'] / with_signal:.2f}/{stats['traced'] / with_signal:.2f}"
            if with_signal
            else "-"
        )
        print(
            f"{run_id:>3}  {method:17}  {config_hash}  "
            f"{config.get('budget', {}).get('max_tokens') or '-':>6}  "
            f"{decode.get('signal_max_tokens', '-'):>4}  "
            f"{decode.get('signal_layout', 'per_run'):11}  "
            f"{decode.get('render_limits', {}).get('max_events', '-'):>6}  "
            f"{stats['tasks']:>5}  {stats['guided']:>6}  {stats['refreshes']:>9}  "
            f"{100 * empty:>8.0f}% ({100 * unfit:>3.0f}%)  {shown:>17}  {stats['same']:>14}"
        )


def is_greedy(spec):
    """Whether an attempt's spec is a greedy decode: gamma 0, and not an
    answer sampled above temperature 0 (as in scripts/curve-tasks.py)."""
    if spec.get("gamma", 0.0) > 0.0 or "config" not in spec:
        return False
    return spec.get("answer_top_p") is None or spec["config"]["t"] == 0.0


def count(solve, stats):
    """Adds one solve record's guided attempts to `stats`."""
    stats["tasks"] += 1
    attempts = solve.get("attempts", [])
    greedy = {}
    for attempt in attempts:
        spec = attempt.get("spec", {})
        if is_greedy(spec) and attempt.get("code"):
            greedy.setdefault(spec["config"].get("style"), attempt["code"])
    for attempt in attempts:
        spec = attempt.get("spec", {})
        if spec.get("gamma", 0.0) <= 0.0:
            continue
        stats["guided"] += 1
        code = attempt.get("code")
        if code and greedy.get(spec.get("config", {}).get("style")) == code:
            stats["same"] += 1
        for refresh in attempt.get("refreshes", []):
            stats["refreshes"] += 1
            traced = len(refresh.get("traces", []))
            if refresh.get("signal") is None:
                stats["empty"] += 1
                stats["unfit"] += traced > 0
            else:
                stats["traced"] += traced
                stats["shown"] += traced - refresh.get("entries_dropped", 0)


if __name__ == "__main__":
    main()
