"""The pytest plugin users install with cachepoint: a temporary project runs the README's example test
file exactly as shipped, with nothing but `pytest` (the plugin is found through its entry point)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cachepoint.testing import assert_cache_hit, assert_cache_written, cache_usage

EXAMPLE = Path(__file__).parents[2] / "examples" / "test_my_prompt_cache.py"


def test_the_example_passes_in_a_fresh_project(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "test_example.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_a_failing_expectation_fails_in_the_users_project(tmp_path: Path) -> None:
    (tmp_path / "test_wrong.py").write_text(
        EXAMPLE.read_text().replace("assert_cache_hit(second, tokens=", "assert_cache_hit(second, tokens=1 + ")
    )
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_wrong.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1 and "expected a cache read of" in done.stdout


def test_helpers_read_every_response_shape() -> None:
    converse = {"usage": {"inputTokens": 5, "cacheReadInputTokens": 1100, "cacheWriteInputTokens": 0}}
    anthropic_body = {"usage": {"input_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 900}}
    assert cache_usage(converse) == (1100, 0) and cache_usage(anthropic_body) == (0, 900)
    assert_cache_hit(converse, tokens=1100)
    assert_cache_written(anthropic_body, tokens=900)
    with pytest.raises(AssertionError, match="expected a cache write; usage has 1100 read and 0 written"):
        assert_cache_written(converse)
    with pytest.raises(AssertionError, match="no usage"):
        cache_usage({"output": {}})
