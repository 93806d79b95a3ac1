#!/usr/bin/env python3
"""Apply the rule of docs/tuning.md ("How the default will be chosen") to
the train curves: which setting and budget become `egcfg solve`'s default.

    scripts/choose-default.py DB [DB...] [--leave-out HASH,...]

One database per model (the train curves of scripts/curve.sh). A
candidate is a run at 3,000, 6,000 or 12,000 forward tokens whose config
hash every database holds (the same setting has the same hash whatever
the model), less those left out. In each database the candidates are
compared on the tasks every one of them finished; the task–model pairs of
all databases are pooled.

The rule: the candidates within one pass per database of the most passes
on the prompt's asserts are eligible; the one with the fewest forward
tokens per task is chosen, unless another eligible one beats it on MBPP+
(more pairs only it passes, exact two-sided sign test p < 0.05), in
which case the next cheapest is tried. Standard library only.
"""

import argparse
import sqlite3
from math import comb

BUDGETS = (3000, 6000, 12000)
ASSERTS, PLUS, ET = "mbpp", "mbpp+", "mbpp-et-partial"


def sign_test_p(only_a, only_b):
    """Exact two-sided sign test on the discordant pairs."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def load(path, leave_out):
    """The database's model, and per candidate run: method, budget, and
    per task the forward tokens and each suite's verdict."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    models = [m for (m,) in db.execute("select distinct model from runs")]
    if len(models) != 1:
        raise SystemExit(f"{path}: one model per database, found {models}")
    runs = {}
    query = "select id, method, config_hash, json_extract(config, '$.budget.max_tokens') from runs"
    for run_id, method, config_hash, budget in db.execute(query):
        if budget in BUDGETS and config_hash not in leave_out:
            runs[run_id] = {"method": method, "hash": config_hash, "budget": budget, "tasks": {}}
    for run_id, task, tokens in db.execute(
        "select run_id, task_id, prefill_tokens + decode_tokens from results"
    ):
        if run_id in runs:
            runs[run_id]["tasks"][task] = {"tokens": tokens}
    for run_id, task, suite, passed in db.execute(
        "select r.run_id, r.task_id, s.suite, s.passed from results r "
        "join scores s on s.result_id = r.id"
    ):
        if run_id in runs:
            runs[run_id]["tasks"][task][suite] = bool(passed)
    return models[0], {run["hash"]: run for run in runs.values()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dbs", nargs="+", metavar="DB")
    parser.add_argument("--leave-out", default="", metavar="HASH,...")
    args = parser.parse_args()
    leave_out = set(filter(None, args.leave_out.split(",")))
    loaded = [load(path, leave_out) for path in args.dbs]
    hashes = set.intersection(*(set(runs) for _, runs in loaded))
    if not hashes:
        raise SystemExit("no candidate run is in every database")

    # Task–model pairs: per database, the tasks every candidate finished.
    pairs = {h: [] for h in hashes}
    for model, runs in loaded:
        tasks = set.intersection(*(set(runs[h]["tasks"]) for h in hashes))
        print(f"{model}: {len(tasks)} tasks every candidate finished")
        for h in hashes:
            pairs[h] += [runs[h]["tasks"][t] for t in sorted(tasks)]
    first = loaded[0][1]
    candidates = sorted(hashes, key=lambda h: (first[h]["method"], first[h]["budget"], h))

    def passes(h, suite):
        return sum(p.get(suite, False) for p in pairs[h])

    def held(h, suite):
        return sum(suite in p for p in pairs[h])

    def tokens(h):
        return sum(p["tokens"] for p in pairs[h]) / len(pairs[h])

    best = max(passes(h, ASSERTS) for h in candidates)
    eligible = sorted(
        (h for h in candidates if passes(h, ASSERTS) >= best - len(loaded)), key=tokens
    )
    print(f"\n{'method':18} {'config':16} {'budget':>6} {'asserts':>9} {'mbpp+':>9} {'mbpp-et':>9} {'tokens/task':>11}")
    for h in candidates:
        run = first[h]
        mark = " eligible" if h in eligible else ""
        print(
            f"{run['method']:18} {h:16} {run['budget']:>6} "
            f"{passes(h, ASSERTS):>4}/{held(h, ASSERTS):<4} {passes(h, PLUS):>4}/{held(h, PLUS):<4} "
            f"{passes(h, ET):>4}/{held(h, ET):<4} {tokens(h):>11.0f}{mark}"
        )

    print(f"\nEligible (within {len(loaded)} of the best, {best}, on the asserts), cheapest first:")
    for h in eligible:
        beaten_by = []
        for other in eligible:
            if other == h:
                continue
            both = [(a.get(PLUS), b.get(PLUS)) for a, b in zip(pairs[h], pairs[other]) if PLUS in a]
            only_h = sum(a and not b for a, b in both)
            only_other = sum(b and not a for a, b in both)
            p = sign_test_p(only_h, only_other)
            if only_other > only_h and p < 0.05:
                beaten_by.append(f"{first[other]['method']} {other} (+{only_other}/-{only_h}, p {p:.3f})")
        run = first[h]
        if beaten_by:
            print(f"  {run['method']} {h} at {run['budget']}: set aside, beaten on MBPP+ by {'; '.join(beaten_by)}")
            continue
        print(f"  {run['method']} {h} at {run['budget']}: chosen")
        return
    print("  none survives the MBPP+ check")


if __name__ == "__main__":
    main()
