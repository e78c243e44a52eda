"""The shared fixtures of ``conftest.py`` (checked in a pytest session of their own) and
``support.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import support

HERE = Path(__file__).parent

INNER_TESTS = """
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import conftest


def test_leaves_a_child_running():
    conftest.EXIT_GRACE_S = 0.5  # the child sleeps for longer: waiting the default is waste
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_waits_for_its_child():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_shuts_its_pool_down():
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        assert list(pool.map(abs, [-1, -2, -3])) == [1, 2, 3]
"""


def test_a_test_that_leaves_a_child_running_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((HERE / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(support=(HERE / "support.py").read_text(encoding="utf-8"))
    pytester.makepyfile(INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # The leak is reported in the teardown of the test that made it, and only there: the fork
    # server that stays for the session and the joined pool workers are not leaks.
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_leaves_a_child_running*", "*left child processes running*"]
    )
    assert "time.sleep(30)" in result.stdout.str()


def test_run_perpsim_runs_from_the_repository_unless_told_otherwise(tmp_path: Path) -> None:
    proc = support.run_perpsim("validate", "scenarios/baseline.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "scenarios/baseline.yaml" in proc.stdout
    # Elsewhere the relative path means another file, and perpsim is still this checkout's.
    elsewhere = support.run_perpsim("validate", "scenarios/baseline.yaml", cwd=tmp_path)
    assert elsewhere.returncode == 2, elsewhere.stderr
    assert "file not found" in elsewhere.stderr and "Traceback" not in elsewhere.stderr
