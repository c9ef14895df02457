#!/usr/bin/env python3
"""Tests of check.py on small synthetic crates: each failure it exists for, and what it must
not count (test code, comments, strings). Run: python3 tools/structure-check/test_check.py"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402

CLEAN = {
    "lib.rs": "pub mod rejection;\npub mod checks;\npub mod pipeline;\nmod host;\n",
    "rejection.rs": "pub enum Rejection { Denied }\n",
    "checks/mod.rs": "pub mod ip;\npub use ip::allowed;\n",
    "checks/ip.rs": "use crate::rejection::Rejection;\npub fn allowed() -> Option<Rejection> { None }\n",
    "pipeline.rs": "use crate::checks;\npub fn run() { let _ = checks::allowed(); }\n",
    "host/mod.rs": "mod abi;\nuse crate::pipeline::run;\n",
    "host/abi.rs": "#![allow(unsafe_code)]\npub fn call() { unsafe {} }\n",
}


class CheckTest(unittest.TestCase):
    def run_check(self, changes, baseline=(), test_exceptions=()):
        files = dict(CLEAN)
        files.update(changes)
        with tempfile.TemporaryDirectory() as src:
            for rel, text in files.items():
                if text is None:
                    continue
                path = os.path.join(src, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            failures, summary, bad = check.check(src, list(baseline), set(test_exceptions))
        return failures, summary, bad

    def test_a_clean_crate_passes(self):
        failures, summary, bad = self.run_check({})
        self.assertEqual((failures, bad), ([], []))
        self.assertIn("6 modules, 4 imports; 0 upward imports, cycles of no modules", summary)

    def test_an_upward_import_fails_unless_known(self):
        upward = {"rejection.rs": "use crate::pipeline::run;\npub enum Rejection {}\n"}
        failures, _, bad = self.run_check(upward)
        self.assertIn("upward rejection -> pipeline", bad)
        self.assertTrue(failures)
        failures, _, _ = self.run_check(upward, baseline=bad)
        self.assertEqual(failures, [])

    def test_a_cycle_fails_on_every_edge_in_it(self):
        # checks::ip -> rejection -> checks (mod.rs) -> checks::ip, through a grouped use.
        failures, _, bad = self.run_check(
            {"rejection.rs": "use crate::{checks::{self}, pipeline as _p};\npub enum Rejection {}\n"})
        for edge in ["cycle checks::ip -> rejection", "cycle rejection -> checks",
                     "cycle checks -> checks::ip"]:
            self.assertIn(edge, bad)
        self.assertTrue(any("new upward imports or import cycles" in f for f in failures))

    def test_super_and_inline_paths_count(self):
        _, _, bad = self.run_check(
            {"checks/ip.rs": "pub fn f() -> crate::pipeline::X { super::super::host::g() }\n"})
        self.assertIn("upward checks::ip -> pipeline", bad)
        self.assertIn("upward checks::ip -> host", bad)

    def test_test_code_comments_and_strings_do_not_count(self):
        failures, _, bad = self.run_check({
            "rejection.rs": (
                "// use crate::pipeline;\n/* crate::host::x /* nested */ crate::host */\n"
                "pub const S: &str = \"crate::pipeline::run\";\n"
                "pub const R: &str = r#\"use crate::host;\"#;\npub const C: char = '{';\n"
                "pub enum Rejection<'a> { D(&'a str) }\n"
                "#[cfg(test)]\n#[allow(dead_code)]\nmod tests { use crate::pipeline::run; fn f() { {} } }\n"
                "#[cfg(test)]\nmod more_tests;\n"),
            "rejection/more_tests.rs": "use crate::host;\n",
        }, test_exceptions=["rejection::more_tests"])
        self.assertEqual((failures, bad), ([], []))

    def test_test_modules_are_named_tests_and_exceptions_only_shrink(self):
        inline = {"rejection.rs": "pub enum Rejection { Denied }\n#[cfg(test)]\nmod tests {}\n"
                  "#[cfg(test)]\nmod extra_tests {}\n"}
        failures, _, _ = self.run_check(inline)
        self.assertTrue(any("named `tests`" in f and "rejection::extra_tests" in f for f in failures))
        failures, _, _ = self.run_check(inline, test_exceptions=["rejection::extra_tests"])
        self.assertEqual(failures, [])
        failures, _, _ = self.run_check({}, test_exceptions=["rejection::extra_tests"])
        self.assertTrue(any("remove from TEST_MODULES_ELSEWHERE" in f for f in failures))

    def test_a_fixed_edge_must_leave_the_baseline(self):
        failures, _, _ = self.run_check({}, baseline=["upward rejection -> pipeline"])
        self.assertTrue(any("remove from tools/structure-check/baseline.txt" in f for f in failures))

    def test_unsafe_allowed_only_in_abi_and_every_module_has_a_layer(self):
        failures, _, _ = self.run_check({"checks/ip.rs": "#[allow(unsafe_code)]\nfn f() {}\n"})
        self.assertTrue(any("outside host/abi.rs: checks/ip.rs" in f for f in failures))
        failures, _, _ = self.run_check({"gadgets.rs": "pub fn g() {}\n"})
        self.assertTrue(any("without a layer" in f and "gadgets" in f for f in failures))

    def test_use_trees_expand(self):
        self.assertEqual(check.expand_use_tree("crate::a::{b, c::{d, e as f}, self}"),
                         [["crate", "a", "b"], ["crate", "a", "c", "d"],
                          ["crate", "a", "c", "e"], ["crate", "a"]])


if __name__ == "__main__":
    unittest.main()
