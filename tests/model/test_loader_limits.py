"""Hostile model files: alias bombs, recursive aliases and oversized files are refused
with FILE:LINE:COL before they cost anything, through every way a model is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsdesk.cli import app
from opsdesk.desk.models import ModelRejected, apply_model_file
from opsdesk.model import (
    MAX_ALIAS_NODES,
    check_file,
    example_model_path,
    load_model_file,
    load_model_text,
)
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

# nine lines, 9**9 (387 million) strings once expanded
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    result = load_model_text(BILLION_LAUGHS, "bomb.yaml")
    assert result.model is None
    [problem] = result.problems
    assert problem.code == "yaml-aliases"
    # b..d expand to 10 + 9 * 91 + ... nodes: the first *d on line 5 crosses 10,000
    assert problem.format().startswith(
        "bomb.yaml:5:8: error: aliases expand to more than 10,000 nodes at *d"
    )


def test_billion_laughs_file_through_check_and_cli(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS, encoding="utf-8")
    [problem] = check_file(bomb)
    assert (problem.line, problem.col, problem.code) == (5, 8, "yaml-aliases")
    result = CliRunner().invoke(app, ["model", "check", str(bomb)])
    assert result.exit_code == 1
    assert f"{bomb}:5:8: error: aliases expand" in result.output


def test_many_flat_aliases_count_like_nested_ones() -> None:
    # no nesting, just one large anchored list aliased again and again
    big = "[" + ", ".join(["x"] * 999) + "]"
    text = f"base: &big {big}\n" + "".join(f"k{i}: *big\n" for i in range(12))
    [problem] = load_model_text(text, "wide.yaml").problems
    assert problem.code == "yaml-aliases"
    # each alias stands for 1,000 nodes: the 11th (k10, line 12) passes 10,000
    assert (problem.line, problem.col) == (12, 6)


def test_recursive_alias_is_refused_with_its_position() -> None:
    [problem] = load_model_text("name: x\nteams: &t [a, *t]\n", "loop.yaml").problems
    assert problem.code == "yaml-aliases"
    assert (problem.line, problem.col) == (2, 15)
    assert "recursive" in problem.message


def test_a_few_aliases_still_load() -> None:
    text = example_model_path().read_text(encoding="utf-8")
    # share the agent role's permission list with the qa analyst's through an alias
    text = text.replace(
        "    permissions:\n      - tickets.read\n",
        "    permissions: &agent_perms\n      - tickets.read\n",
        1,
    )
    result = load_model_text(text, "aliased.yaml")
    assert not result.has_errors, [p.format() for p in result.problems]
    assert MAX_ALIAS_NODES >= 1_000


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"name: x\n" + b"#" * 2_000_000 + b"\n")
    [problem] = load_model_file(big).problems
    assert problem.code == "too-large"
    assert problem.format().startswith(f"{big}:1:1: error: the file is 2,000,009 bytes")
    [small_limit] = load_model_file(example_model_path(), max_bytes=100).problems
    assert small_limit.code == "too-large"
    [text_problem] = load_model_text("name: x\n" * 20, "t.yaml", max_bytes=50).problems
    assert text_problem.code == "too-large"


def test_oversized_file_setting_reaches_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSDESK_MODEL_MAX_BYTES", "100")
    result = CliRunner().invoke(app, ["model", "check", str(example_model_path())])
    assert result.exit_code == 1
    assert "(OPSDESK_MODEL_MAX_BYTES)" in result.output


def test_apply_refuses_a_bomb_and_changes_nothing(db: Database, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS, encoding="utf-8")
    big = tmp_path / "big.yaml"
    big.write_bytes(example_model_path().read_bytes() + b"#" * 200)
    for path, max_bytes, code in ((bomb, 1_048_576, "yaml-aliases"), (big, 20_000, "too-large")):
        with pytest.raises(ModelRejected) as refused, UnitOfWork(db) as uow:
            apply_model_file(uow, path, author="test", max_bytes=max_bytes)
        assert [p.code for p in refused.value.problems] == [code]
    assert db.current_revision() is not None
    with UnitOfWork(db) as uow:
        assert uow.model_version is None and uow.last_seq == 0
