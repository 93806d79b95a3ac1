"""Unit tests of the harness's pure parts: prepare, call expressions, the
bounded repr, the plain-data value encoder and the test planner.

Run with `python3 -m unittest discover -s crates/executor/src/python`
(stdlib only). Importing the harness runs no server: it only starts when
the bootstrap runs it as `__egcfg__`. Every input here is written by the
test's author; no model output runs outside the sandbox.
"""

import importlib.util
import os
import unittest

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")
_SPEC = importlib.util.spec_from_file_location("egcfg_harness", _PATH)
harness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(harness)


class Prepare(unittest.TestCase):
    def test_a_complete_program_is_normalised_without_docstrings(self):
        src = 'def f(x):\n    """Doc."""\n    return  x+1\n'
        self.assertEqual(harness.prepare(src), "def f(x):\n    return x + 1")

    def test_an_unfinished_last_block_is_dropped_for_a_pass(self):
        # A last line that cannot take a `pass` at its own indent goes.
        self.assertEqual(harness.prepare("def f(x):\n    if x:"), "def f(x):\n    pass")

    def test_a_broken_last_line_is_dropped(self):
        self.assertEqual(harness.prepare("def f(x):\n    y = 1\n    return (x +"),
                         "def f(x):\n    y = 1")

    def test_code_fences_are_ignored(self):
        self.assertEqual(harness.prepare("```python\nx = 1\n```"), "x = 1")

    def test_nothing_runnable_is_none(self):
        self.assertIsNone(harness.prepare(")))"))
        self.assertIsNone(harness.prepare(""))


class CallExpression(unittest.TestCase):
    def test_the_left_operand_keeps_its_source_text(self):
        self.assertEqual(harness.call_expression("assert f(1,  2) == 3"), "f(1,  2)")

    def test_not_and_bare_expressions(self):
        self.assertEqual(harness.call_expression("assert not g([1])"), "g([1])")
        self.assertEqual(harness.call_expression("assert h()"), "h()")

    def test_anything_but_one_assert_is_none(self):
        self.assertIsNone(harness.call_expression("x = 1"))
        self.assertIsNone(harness.call_expression("assert f(1) ==="))


class BoundedRepr(unittest.TestCase):
    def setUp(self):
        self.repr = harness.Repr(20, 3, 2)

    def test_long_containers_and_strings_are_cut_with_a_count(self):
        self.assertEqual(self.repr(list(range(10))), "[0, 1, 2, ...(+7)]")
        text = self.repr("x" * 300)
        self.assertTrue(text.startswith("'xxx") and text.endswith(")"), text)
        self.assertLessEqual(len(text), 20 + len("...(+280)"))

    def test_big_ints_are_not_printed(self):
        self.assertEqual(self.repr(7 ** 3000), "<int %d bits>" % (7 ** 3000).bit_length())

    def test_user_repr_is_never_called(self):
        class Loud:
            def __repr__(self):
                raise AssertionError("user __repr__ ran")

        self.assertIn("Loud", self.repr(Loud()))
        self.assertIn("Loud", self.repr([Loud()]))

    def test_depth_is_bounded(self):
        self.assertEqual(self.repr([[[[1]]]]), "[[[...]]]")


class EncodeValue(unittest.TestCase):
    enc = staticmethod(harness.encode_value)

    def test_plain_data_is_tagged(self):
        self.assertEqual(self.enc(255), ["int", "ff"])
        self.assertEqual(self.enc(-1), ["int", "-1"])
        self.assertEqual(self.enc(True), True)
        self.assertEqual(self.enc(None), None)
        self.assertEqual(self.enc("a"), "a")
        self.assertEqual(self.enc((1, [b"x"])), ["tuple", [["int", "1"], ["list", [["bytes", "78"]]]]])
        self.assertEqual(self.enc({"k": 1.5}), ["dict", [["k", ["float", 0x3FF8000000000000]]]])

    def test_lone_surrogates_are_code_points(self):
        self.assertEqual(self.enc("\ud800"), ["ustr", [0xD800]])

    def test_builtin_subclasses_are_their_builtin_value(self):
        class Lying(int):
            def __eq__(self, other):
                return True

            def __format__(self, spec):
                raise AssertionError("user code ran")

        self.assertEqual(self.enc(Lying(5)), ["int", "5"])

    def test_other_objects_are_unsupported_with_their_builtin_truth(self):
        class Same:
            def __eq__(self, other):
                return True

            def __bool__(self):
                raise AssertionError("user __bool__ ran")

        self.assertEqual(self.enc(Same()), {"unsupported": "Same"})
        self.assertEqual(self.enc(object()), {"unsupported": "object", "truth": True})

    def test_cycles_and_huge_values_are_unsupported(self):
        cycle = []
        cycle.append(cycle)
        self.assertIn("unsupported", self.enc(cycle))
        self.assertIn("unsupported", self.enc([0] * (harness.ENCODE_NODES + 1)))


class PlanAsserts(unittest.TestCase):
    plan = staticmethod(harness.test_plan)

    def test_equality_with_a_literal(self):
        self.assertEqual(self.plan("assert f(1, 'a') == [1, 2]"),
                         [{"kind": "eq", "call": "f(1, 'a')", "expected": ["list", [["int", "1"], ["int", "2"]]],
                           "negate": False}])
        (p,) = self.plan("assert 3 == f(x=2)")
        self.assertEqual((p["call"], p["expected"]), ("f(x=2)", ["int", "3"]))

    def test_an_expected_side_of_pure_builtins_is_evaluated_here(self):
        (p,) = self.plan("assert f(1) == [1, 2] + list(range(3, 5))")
        self.assertEqual(p["expected"], ["list", [["int", str(i)] for i in (1, 2, 3, 4)]])
        (p,) = self.plan("assert not f(1) != 'ab' * 2")
        self.assertEqual((p["kind"], p["expected"], p["negate"]), ("ne", "abab", True))

    def test_the_call_side_may_be_named_like_a_builtin(self):
        # MBPP's own `sum` is the program's, not the builtin.
        (p,) = self.plan("assert sum(10, 15) == 6")
        self.assertEqual((p["call"], p["expected"]), ("sum(10, 15)", ["int", "6"]))

    def test_identity_truth_and_isclose(self):
        self.assertEqual(self.plan("assert f() is None")[0]["kind"], "is")
        self.assertIsNone(self.plan("assert f() is 3"))
        self.assertEqual(self.plan("assert f()[0]")[0]["kind"], "truthy")
        (p,) = self.plan("assert math.isclose(f(2), 1.5, rel_tol=0.01)")
        self.assertEqual((p["kind"], p["rel_tol"], p["abs_tol"]), ("isclose", 0.01, 0.0))

    def test_a_true_constant_only_needs_the_program_to_run(self):
        self.assertEqual(self.plan("assert True"), [harness.runs()])

    def test_shapes_the_candidate_could_decide_are_not_planned(self):
        for code in ("assert f(1) < 3",
                     "assert f(1) == g(2)",
                     "assert f(1) == open('x').read()",
                     "assert (f(1) == 2) == True",
                     "assert f(1) == 2 or True",
                     "assert f(1) == (lambda: 2)()",
                     "x = 1",
                     "assert f(1) == 1\nassert f(2) == 2"):
            self.assertIsNone(self.plan(code), code)

    def test_an_expected_value_that_fails_to_compute_is_not_planned(self):
        self.assertIsNone(self.plan("assert f(1) == 1 // 0"))
        self.assertIsNone(self.plan("assert f(1) == object()"))


class PlanScripts(unittest.TestCase):
    plan = staticmethod(harness.script_plan)
    HUMANEVAL = ("\n\nMETADATA = {'author': 'jt'}\n\n\ndef check(candidate):\n"
                 "    assert candidate([1, 2]) == 3\n"
                 "    assert candidate([]) == 0, 'empty'\n"
                 "    assert True, 'This prints if this assert fails'\n\n"
                 "check(total)\n")

    def test_humaneval_checks_become_one_check_per_assert(self):
        self.assertEqual([(p["call"], p["expected"]) for p in self.plan(self.HUMANEVAL)],
                         [("total([1, 2])", ["int", "3"]), ("total([])", ["int", "0"])])

    def test_scripts_with_logic_of_their_own_are_not_planned(self):
        for body in ("    for x in range(3):\n        assert candidate(x) == x\n",
                     "    y = candidate(1)\n    assert y == 1\n",
                     "    candidate = abs\n    assert candidate(1) == 1\n",
                     "    assert candidate(pi) == 1\n",
                     "    assert abs(candidate(1) - 0.5) < 1e-6\n"):
            script = "from math import pi\ndef check(candidate):\n%scheck(f)\n" % body
            self.assertIsNone(self.plan(script), body)
        self.assertIsNone(self.plan("check(f)\n"))
        self.assertIsNone(self.plan("import os\nos.remove('x')\ndef check(c):\n    assert c(1) == 1\ncheck(f)"))



class Deadlines(unittest.TestCase):
    """A deadline does not count the time its task waited for a CPU, read
    from a schedstat file (here a stand-in whose run delay the test sets)."""

    def setUp(self):
        import tempfile
        self.file = tempfile.NamedTemporaryFile()
        self.waited(0.0)
        self.fd = os.open(self.file.name, os.O_RDONLY)

    def tearDown(self):
        os.close(self.fd)
        self.file.close()

    def waited(self, seconds):
        """Makes the stand-in say its task has waited `seconds` in all."""
        self.file.seek(0)
        self.file.truncate()
        self.file.write(b"123456789 %d 42\n" % int(seconds * 1e9))
        self.file.flush()

    def test_time_waiting_for_a_cpu_is_given_back(self):
        deadline = harness.Deadline(10.0, 2.0, self.fd)
        self.assertAlmostEqual(deadline.left(), 10.0, delta=0.5)
        self.waited(3.0)
        self.assertAlmostEqual(deadline.left(), 13.0, delta=0.5)

    def test_the_wall_clock_still_bounds_it(self):
        deadline = harness.Deadline(10.0, 2.0, self.fd)
        self.waited(50.0)
        self.assertAlmostEqual(deadline.left(), 20.0, delta=0.5)

    def test_without_the_file_it_is_wall_clock_time(self):
        deadline = harness.Deadline(10.0, 2.0, None)
        self.assertAlmostEqual(deadline.left(), 10.0, delta=0.5)
        self.assertEqual(harness.run_delay_s(None), 0.0)
        self.assertIsNone(harness.open_schedstat("/nonexistent/schedstat"))

    def test_a_real_schedstat_reads(self):
        fd = harness.open_schedstat("/proc/thread-self/schedstat")
        if fd is None:
            self.skipTest("no /proc here")
        self.assertGreaterEqual(harness.run_delay_s(fd), 0.0)
        os.close(fd)

if __name__ == "__main__":
    unittest.main()
