"""Tests of scripts/choose-default.py, the rule that picks the default
(stdlib only; scripts/test.sh runs them)."""

import importlib.util
import json
import pathlib
import sqlite3
import tempfile
import unittest

_PATH = pathlib.Path(__file__).resolve().parent.parent / "choose-default.py"
_SPEC = importlib.util.spec_from_file_location("choose_default", _PATH)
rule = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(rule)


def pair(asserts, plus=None, tokens=1000):
    """One task–model pair's record as `pool` returns it."""
    record = {"tokens": tokens, rule.ASSERTS: asserts}
    if plus is not None:
        record[rule.PLUS] = plus
    return record


class SignTest(unittest.TestCase):
    def test_exact_two_sided_tails(self):
        self.assertEqual(rule.sign_test_p(0, 0), 1.0)
        self.assertAlmostEqual(rule.sign_test_p(0, 6), 2 / 64)
        self.assertAlmostEqual(rule.sign_test_p(5, 1), 2 * 7 / 64)
        self.assertEqual(rule.sign_test_p(3, 3), 1.0)

    def test_p_reads_as_the_report_writes_it(self):
        self.assertEqual(rule.p_text(14 / 64), "p 0.219")
        self.assertEqual(rule.p_text(rule.sign_test_p(0, 17)), "p < 0.001")
        self.assertEqual(rule.sign_test_p(2, 9), rule.sign_test_p(9, 2))


class Choose(unittest.TestCase):
    def test_the_cheapest_of_those_near_the_best_is_chosen(self):
        pairs = {
            "best": [pair(True, tokens=5000)] * 10,
            "near": [pair(True, tokens=2000)] * 9 + [pair(False, tokens=2000)],
            "far": [pair(True, tokens=500)] * 7 + [pair(False, tokens=500)] * 3,
        }
        eligible, chosen, set_aside = rule.choose(pairs, slack=2)
        self.assertEqual(eligible, ["near", "best"])
        self.assertEqual(chosen, "near")
        self.assertEqual(set_aside, {})

    def test_one_beaten_on_mbpp_plus_gives_way_to_the_next_cheapest(self):
        # Both pass every assert; only `dear` passes MBPP+ on 6 pairs.
        cheap = [pair(True, plus=False, tokens=100)] * 6 + [pair(True, plus=True, tokens=100)] * 4
        dear = [pair(True, plus=True, tokens=900)] * 10
        eligible, chosen, set_aside = rule.choose({"cheap": cheap, "dear": dear}, slack=0)
        self.assertEqual(eligible, ["cheap", "dear"])
        self.assertEqual(chosen, "dear")
        self.assertEqual(set_aside["cheap"][0][:3], ("dear", 6, 0))

    def test_a_split_that_could_be_chance_sets_nothing_aside(self):
        cheap = [pair(True, plus=False, tokens=100)] * 2 + [pair(True, plus=True, tokens=100)] * 8
        dear = [pair(True, plus=True, tokens=900)] * 10
        _, chosen, set_aside = rule.choose({"cheap": cheap, "dear": dear}, slack=0)
        self.assertEqual(chosen, "cheap", "+2/-0 has p 0.5")
        self.assertEqual(set_aside, {})

    def test_pairs_without_mbpp_plus_do_not_count_on_it(self):
        self.assertEqual(rule.plus_split([pair(True), pair(True, plus=True)], [pair(True), pair(True, plus=False)]), (1, 0))


class LoadAndPool(unittest.TestCase):
    def database(self, directory, model, runs):
        """A results database with the columns the script reads: `runs` is
        [(method, hash, budget, {task: (tokens, {suite: passed})})]."""
        path = pathlib.Path(directory) / f"{model}.sqlite"
        db = sqlite3.connect(path)
        db.executescript(
            "create table runs (id integer primary key, method text, model text, config_hash text, config text);"
            "create table results (id integer primary key, run_id integer, task_id text,"
            " prefill_tokens integer, decode_tokens integer);"
            "create table scores (result_id integer, suite text, passed integer);"
        )
        for method, config_hash, budget, tasks in runs:
            config = json.dumps({"budget": {"max_tokens": budget}})
            run_id = db.execute(
                "insert into runs (method, model, config_hash, config) values (?, ?, ?, ?)",
                (method, model, config_hash, config),
            ).lastrowid
            for task, (tokens, suites) in tasks.items():
                result_id = db.execute(
                    "insert into results (run_id, task_id, prefill_tokens, decode_tokens) values (?, ?, ?, ?)",
                    (run_id, task, tokens - 10, 10),
                ).lastrowid
                for suite, passed in suites.items():
                    db.execute("insert into scores values (?, ?, ?)", (result_id, suite, int(passed)))
        db.commit()
        db.close()
        return path

    def test_only_shared_settings_and_each_database_s_shared_tasks_are_pooled(self):
        with tempfile.TemporaryDirectory() as directory:
            small = self.database(directory, "small", [
                ("sample", "s3k", 3000, {"t1": (800, {"mbpp": True}), "t2": (900, {"mbpp": False})}),
                ("egcfg", "e3k", 3000, {"t1": (700, {"mbpp": True, "mbpp+": True})}),
                ("egcfg", "only-here", 3000, {"t1": (1, {}), "t2": (1, {})}),
                ("baseline", "greedy", None, {"t1": (500, {"mbpp": True})}),
            ])
            large = self.database(directory, "large", [
                ("sample", "s3k", 3000, {"t1": (1000, {"mbpp": True}), "t2": (1200, {"mbpp": True})}),
                ("egcfg", "e3k", 3000, {"t1": (600, {"mbpp": False}), "t2": (650, {"mbpp": True})}),
                ("egcfg", "left", 3000, {"t1": (1, {}), "t2": (1, {})}),
            ])
            databases = [rule.load(small, set()), rule.load(large, {"left"})]
            pairs, counts = rule.pool(databases)
        self.assertEqual(sorted(pairs), ["e3k", "s3k"])
        self.assertEqual(counts, [("small", 1), ("large", 2)])
        self.assertEqual([p["tokens"] for p in pairs["s3k"]], [800, 1000, 1200])
        self.assertEqual(rule.passes(pairs["e3k"], rule.ASSERTS), 2)
        self.assertEqual(rule.passes(pairs["e3k"], rule.PLUS), 1)


if __name__ == "__main__":
    unittest.main()
