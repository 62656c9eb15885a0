"""Unmapped statuses: say which, how often, and write a status map ready to edit."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import yaml

from opsdesk.analytics.schema import STATUSES

#: words that suggest a status, checked in order (a first guess for the draft, to check)
_GUESSES: Final = (
    (re.compile(r"clos|cancel|archiv"), "closed"),
    (re.compile(r"resolv|solv|done|complet|fix|finish"), "solved"),
    (re.compile(r"hold|suspend|park|block|vendor|third|problem"), "on_hold"),
    (re.compile(r"wait|pend|await|customer|user|reply|respon"), "pending"),
    (re.compile(r"new|creat|submit|receiv|unassign|triage"), "new"),
    (re.compile(r"open|progress|activ|assign|work|reopen|start|ongoing"), "open"),
)
TODO: Final = "TODO"  # the target of a value nobody has mapped yet: refused until edited


def guess(value: str) -> str | None:
    """A first guess at the status a source value means, or None."""
    lowered = value.lower()
    return next((status for pattern, status in _GUESSES if pattern.search(lowered)), None)


def describe(unmapped: Mapping[str, int], limit: int = 10) -> str:
    """``'In Progress' (1,204 rows), 'Waiting' (3 rows)``, the most frequent first."""
    items = sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{v!r} ({n:,} row{'s' if n != 1 else ''})" for v, n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def write_draft(
    source: Path,
    unmapped: Mapping[str, int],
    given: Mapping[str, str | None],
    given_path: Path | None,
) -> Path:
    """Write a status map to edit beside ``source`` (else in the current directory):
    the entries the user already gave, then each unmapped value with a guessed status or
    ``TODO``, and its row count. Returns its path.

    The file given as ``--status-map`` is updated in place (its entries are kept); any
    other existing file is left alone and the draft gets a free name.
    """
    stem = source.name.split(".")[0]
    lines = [
        f"# Status map for {source.name}: source value -> one of {', '.join(STATUSES)}",
        "# (an empty value keeps the row with no status). Check every guess and replace",
        f"# every {TODO}, then import again with --status-map {'<this file>'}.",
    ]
    for value, target in given.items():
        lines.append(_entry(value, target, "already in your map"))
    for value, count in sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0])):
        guessed = guess(value)
        note = f"{count:,} row{'s' if count != 1 else ''}"
        note += ", guessed: check it" if guessed else ""
        lines.append(_entry(value, guessed or TODO, note))
    text = "\n".join(lines) + "\n"
    for folder in (source.resolve().parent, Path.cwd()):
        path = _free_name(folder, stem, given_path)
        with contextlib.suppress(OSError):
            path.write_text(text, encoding="utf-8")
            return path
    raise OSError(f"cannot write a status map beside {source} or in the current directory")


def _entry(value: str, target: str | None, note: str) -> str:
    key = yaml.safe_dump(value, default_style=None, width=1_000).strip().removesuffix("\n...")
    shown = target or '""'
    return f"{key}: {shown}  # {note}"


def _free_name(folder: Path, stem: str, given_path: Path | None) -> Path:
    path = folder / f"{stem}.status-map.yaml"
    number = 1
    while path.exists() and (given_path is None or path.resolve() != given_path.resolve()):
        number += 1
        path = folder / f"{stem}.status-map-{number}.yaml"
    return path
