#!/usr/bin/env python3
"""Forward tokens per guided line in a bench database, measured, and what the
same attempts would have cost had every refresh prefilled its whole signal
block again (issue 15's "today", before a refresh kept the unchanged start
of the conditional stream in the KV cache).

    scripts/tokens-per-line.py DB [TASK_ID...]

Per run of the database, over the attempts that guided at least one line:
their forward tokens over their guided lines. The derived figure replaces
each attempt's prefill with what a full re-prefill costs, from its own
records: the response marker once for the unconditional stream, then at
every refresh that produced a signal the block, the marker and the code
written so far (the conditional stream was cut back to the prompt head).
The marker's length is that of the task's unguided attempt, whose whole
prefill is its marker. The same decisions are assumed: a full re-prefill
feeds the model the same tokens, so it chooses the same ones (up to the
numerical noise of batch shapes). Standard library only.
"""

import json
import sqlite3
import sys


def marker_tokens(attempts):
    """The response marker's length: the prefill of an attempt without
    refreshes (it forks the prefilled head and adds only the marker)."""
    for attempt in attempts:
        if not attempt["refreshes"]:
            return attempt["cost"]["prefill_tokens"]
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    only = set(sys.argv[2:])
    for run_id, method, model, config in db.execute(
        "SELECT id, method, model, config_hash FROM runs ORDER BY id"
    ):
        tasks = lines = measured = derived = 0
        underived = 0
        for task_id, records in db.execute(
            "SELECT task_id, records FROM results WHERE run_id = ? ORDER BY task_id", (run_id,)
        ):
            if only and task_id not in only:
                continue
            tasks += 1
            attempts = json.loads(records)["attempts"]
            marker = marker_tokens(attempts)
            for attempt in attempts:
                cost = attempt["cost"]
                guided = cost.get("profile", {}).get("guided_lines", 0)
                if not guided:
                    continue
                lines += guided
                forward = cost["profile"]["forward_tokens"]
                measured += forward
                if marker is None:
                    underived += 1
                    continue
                full = marker + sum(
                    r["signal_tokens"] + marker + r["step"]
                    for r in attempt["refreshes"]
                    if r.get("signal")
                )
                derived += forward - cost["prefill_tokens"] + full
        if not lines:
            continue
        print(f"run {run_id} ({method}, {model}, {config}): {tasks} tasks, {lines} guided lines")
        print(f"  measured: {measured / lines:.0f} forward tokens per guided line")
        if underived:
            print(f"  derived full re-prefill: not available ({underived} attempts lack an unguided one)")
        else:
            print(
                f"  derived full re-prefill: {derived / lines:.0f} per guided line "
                f"(measured / derived = {measured / derived:.2f})"
            )


if __name__ == "__main__":
    main()
