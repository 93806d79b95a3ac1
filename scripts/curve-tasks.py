#!/usr/bin/env python3
"""Task by task, which runs of a budget-curve database pass, and which kind
of attempt wrote each passing answer (issue 14: does guidance earn its
place, or do its passes come from greedy and sampled answers?).

    scripts/curve-tasks.py DB [SUITE]

SUITE defaults to `mbpp` (the prompt's asserts). One column per run, in
run order: `P` where the run's chosen program passed SUITE, `.` where it
failed, blank where the run has not finished the task. A passing cell
also says which attempt answered: `g` a greedy decode (γ 0, or the
sampled schedule's answer 0 at temperature 0), `s` a sampled answer, `G`
a guided attempt (γ above 0). The winner is read from the solve's own
records (`winner`, and its attempt's `spec`). Below the table, per run:
method, budget, and how many passes each kind of attempt wrote, on the
tasks every run finished (the curve's tasks). For a SUITE other than
`mbpp`, the line also counts the tasks whose program passed the prompt's
asserts (the visible tests, which every method selects on) and failed
SUITE: how much of a method's score on the asserts its programs keep on
stricter tests. Standard library only.
"""

import json
import sqlite3
import sys


def attempt_kind(spec):
    """`g`, `s` or `G` for an attempt's spec, as the docstring says."""
    if spec.get("gamma", 0.0) > 0.0:
        return "G"
    if spec.get("answer_top_p") is not None and spec["config"]["t"] > 0.0:
        return "s"
    return "g"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    suite = sys.argv[2] if len(sys.argv) == 3 else "mbpp"
    runs = db.execute(
        "select id, method, json_extract(config, '$.budget.max_tokens'), "
        "json_extract(config, '$.derived_from.config_hash') is not null "
        "from runs order by id"
    ).fetchall()
    query = (
        "select r.task_id, s.passed, r.records from results r "
        "join scores s on s.result_id = r.id where r.run_id = ? and s.suite = ?"
    )
    cells = {}
    asserts = {}
    for run_id, *_ in runs:
        if suite != "mbpp":
            for task, passed, _ in db.execute(query, (run_id, "mbpp")):
                asserts[(run_id, task)] = bool(passed)
        for task, passed, records in db.execute(query, (run_id, suite)):
            kind = ""
            if passed:
                solve = json.loads(records)
                winner = solve.get("winner")
                if winner is not None:
                    kind = attempt_kind(solve["attempts"][winner]["spec"])
            cells.setdefault(task, {})[run_id] = ("P" if passed else ".") + kind

    def number(task):
        tail = task.rsplit("/", 1)[-1]
        return (int(tail), task) if tail.isdigit() else (0, task)

    tasks = sorted(cells, key=number)
    print("task       " + " ".join(f"{run_id:>4}" for run_id, *_ in runs))
    for task in tasks:
        row = cells[task]
        print(f"{task:10} " + " ".join(f"{row.get(run_id, ''):>4}" for run_id, *_ in runs))
    shared = [t for t in tasks if all(r[0] in cells[t] for r in runs)]
    print(f"\nOn the {len(shared)} task(s) every run finished ({suite}):")
    for run_id, method, budget, derived in runs:
        passes = [cells[t][run_id] for t in shared if cells[t][run_id].startswith("P")]
        kinds = {k: sum(p[1:] == k for p in passes) for k in ("g", "s", "G")}
        line = (
            f"run {run_id:>3} {method:18} budget {budget or '-':>6}{' (derived)' if derived else ''}: "
            f"{len(passes)}/{len(shared)} pass; answered by greedy {kinds['g']}, "
            f"sampled {kinds['s']}, guided {kinds['G']}"
        )
        if suite != "mbpp":
            on_asserts = [t for t in shared if asserts.get((run_id, t))]
            lost = sum(not cells[t][run_id].startswith("P") for t in on_asserts)
            line += f"; of {len(on_asserts)} passing the asserts, {lost} fail {suite}"
        print(line)


if __name__ == "__main__":
    main()
