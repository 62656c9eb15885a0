"""A status map is a user file: a YAML alias bomb, a self-referring alias and an
oversized file are refused at once, naming where, and nothing is imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsdesk.analytics.importers.mapping import (
    MAX_STATUS_MAP_BYTES,
    ImportRefused,
    load_status_map,
)

BOMB = """\
a: &a [open, open, open, open, open, open, open, open, open]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    path = tmp_path / "statuses.yaml"
    path.write_text(BOMB, encoding="utf-8")
    with pytest.raises(ImportRefused, match=rf"{path.name}:\d+:\d+: .*aliases expand"):
        load_status_map(path)


def test_a_self_referring_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "statuses.yaml"
    path.write_text("New: &n [open, *n]\n", encoding="utf-8")
    with pytest.raises(ImportRefused, match=rf"{path.name}:1:\d+: .*refers to the node"):
        load_status_map(path)


def test_an_oversized_status_map_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "statuses.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("source,status\n")
        fh.write("x,open\n" * (MAX_STATUS_MAP_BYTES // 7 + 1))
    with pytest.raises(ImportRefused, match="is at most"):
        load_status_map(path)


def test_yaml_1_1_surprises_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "statuses.yaml"
    path.write_text("'NO': closed\nIn Progress: open\nOn: open\n", encoding="utf-8")
    assert load_status_map(path) == {"no": "closed", "in progress": "open", "on": "open"}
