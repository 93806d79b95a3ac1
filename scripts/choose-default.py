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
which case the next cheapest is tried. Standard library only; the rule's
parts are tested in scripts/tests/test_choose_default.py.
"""

import argparse
import sqlite3
from math import comb

BUDGETS = (3000, 6000, 12000)
ASSERTS, PLUS, ET = "mbpp", "mbpp+", "mbpp-et-partial"
SIGNIFICANCE = 0.05


def sign_test_p(only_a, only_b):
    """Exact two-sided sign test on the discordant pairs."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def p_text(p):
    """A p-value as `egcfg report` writes it: three decimals, or the bound
    when they would round it to zero."""
    return "p < 0.001" if p < 0.0005 else f"p {p:.3f}"


def load(path, leave_out):
    """The database's model, and its candidate runs by config hash: method,
    budget, and per task the forward tokens and each suite's verdict."""
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


def pool(databases):
    """The candidates every database holds, each with its task–model pairs
    in one order (per database, the tasks every candidate finished, sorted),
    and how many tasks each database gave. `databases` is a list of (model,
    runs by hash) as `load` returns them."""
    hashes = set.intersection(*(set(runs) for _, runs in databases))
    pairs = {h: [] for h in hashes}
    counts = []
    for model, runs in databases:
        tasks = sorted(set.intersection(*(set(runs[h]["tasks"]) for h in hashes))) if hashes else []
        counts.append((model, len(tasks)))
        for h in hashes:
            pairs[h] += [runs[h]["tasks"][t] for t in tasks]
    return pairs, counts


def passes(pairs, suite):
    return sum(p.get(suite, False) for p in pairs)


def tokens_per_task(pairs):
    return sum(p["tokens"] for p in pairs) / len(pairs)


def plus_split(pairs, other):
    """On the pairs MBPP+ holds: (only `pairs` passes, only `other` passes)."""
    both = [(a.get(PLUS, False), b.get(PLUS, False)) for a, b in zip(pairs, other) if PLUS in a]
    return sum(a and not b for a, b in both), sum(b and not a for a, b in both)


def choose(pairs, slack):
    """The rule. Returns the eligible hashes cheapest first, the chosen one
    (None when every eligible one is beaten on MBPP+), and for each one set
    aside the (other, only other, only it, p) that beat it."""
    best = max(passes(p, ASSERTS) for p in pairs.values())
    eligible = sorted(
        (h for h, p in pairs.items() if passes(p, ASSERTS) >= best - slack),
        key=lambda h: (tokens_per_task(pairs[h]), h),
    )
    set_aside = {}
    for h in eligible:
        beaten_by = []
        for other in eligible:
            if other == h:
                continue
            only_h, only_other = plus_split(pairs[h], pairs[other])
            p = sign_test_p(only_h, only_other)
            if only_other > only_h and p < SIGNIFICANCE:
                beaten_by.append((other, only_other, only_h, p))
        if not beaten_by:
            return eligible, h, set_aside
        set_aside[h] = beaten_by
    return eligible, None, set_aside


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dbs", nargs="+", metavar="DB")
    parser.add_argument("--leave-out", default="", metavar="HASH,...")
    args = parser.parse_args()
    leave_out = set(filter(None, args.leave_out.split(",")))
    databases = [load(path, leave_out) for path in args.dbs]
    pairs, counts = pool(databases)
    if not pairs or not all(pairs.values()):
        raise SystemExit("no candidate run is in every database, or they share no task")
    for model, n in counts:
        print(f"{model}: {n} tasks every candidate finished")
    meta = databases[0][1]
    eligible, chosen, set_aside = choose(pairs, slack=len(databases))

    def name(h):
        return f"{meta[h]['method']} {h} at {meta[h]['budget']}"

    print(f"\n{'method':18} {'config':16} {'budget':>6} {'asserts':>9} {'mbpp+':>9} {'mbpp-et':>9} {'tokens/task':>11}")
    for h in sorted(pairs, key=lambda h: (meta[h]["method"], meta[h]["budget"], h)):
        p = pairs[h]
        cells = " ".join(f"{passes(p, s):>4}/{sum(s in t for t in p):<4}" for s in (ASSERTS, PLUS, ET))
        mark = " eligible" if h in eligible else ""
        print(f"{meta[h]['method']:18} {h:16} {meta[h]['budget']:>6} {cells} {tokens_per_task(p):>11.0f}{mark}")
    print(f"\nEligible (within {len(databases)} of the most passes on the asserts), cheapest first:")
    for h in eligible:
        if h in set_aside:
            beaten = "; ".join(f"{name(o)} (+{a}/-{b}, {p_text(p)})" for o, a, b, p in set_aside[h])
            print(f"  {name(h)}: set aside, beaten on MBPP+ by {beaten}")
        elif h == chosen:
            print(f"  {name(h)}: chosen")
            return
    print("  none survives the MBPP+ check")


if __name__ == "__main__":
    main()
