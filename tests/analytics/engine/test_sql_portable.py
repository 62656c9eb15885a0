"""The analytic SQL stays portable: every .sql file transpiles to Spark SQL and Trino."""

from __future__ import annotations

from importlib import resources

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from opsdesk.analytics.engine import SQL_FILES, sql_parameters, sql_text

SQL_DIR = resources.files("opsdesk.analytics") / "sql"
FILES = sorted(item.name for item in SQL_DIR.iterdir() if item.name.endswith(".sql"))


def test_the_engine_queries_are_packaged() -> None:
    assert {f"{name}.sql" for name in SQL_FILES} <= set(FILES)


@pytest.mark.parametrize("dialect", ["spark", "trino"])
@pytest.mark.parametrize("name", FILES)
def test_transpiles(name: str, dialect: str) -> None:
    sql = (SQL_DIR / name).read_text(encoding="utf-8")
    out = sqlglot.transpile(
        sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE, pretty=True
    )
    assert len(out) == 1  # one statement per file
    # named parameters survive as :name for the target engine's bind mechanism
    for parameter in sql_parameters(sql):
        assert f":{parameter}" in out[0]


def test_parameters_are_named_only() -> None:
    for name in FILES:
        text = sql_text(name.removesuffix(".sql"))
        assert "?" not in text, f"{name}.sql: use $name parameters"
