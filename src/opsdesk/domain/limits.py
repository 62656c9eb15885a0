"""The bounds every input is held to, stated once.

The domain commands enforce them (so the CLI, the importers' commands and the API
all meet the same rule), and the API's request schemas document the same numbers
from these constants in the OpenAPI document. ``docs/api.md`` lists them.
"""

from __future__ import annotations

import re
import unicodedata

MAX_ID = 2**63 - 1
"""Ids are signed 64-bit integers in the database (SQLite INTEGER, PostgreSQL BIGINT)."""

MAX_NAME = 200
MAX_SUBJECT = 300
MAX_BODY = 100_000
MAX_REASON = 1_000
MAX_NOTE = 2_000
MAX_HANDLE = 320
"""An e-mail address is at most 254 characters; other handles get the same room."""
MAX_HANDLES = 20
MAX_TAG = 64
MAX_TAGS = 50
"""Tags on one ticket, after a change is applied."""
MAX_CODE = 64
"""Identifiers from the operating model: request types, teams, exception types, rules."""
CSAT_MIN = 1
CSAT_MAX = 5

# Unicode categories that carry no visible text: controls, format characters (zero-width
# joiners, bidi marks), surrogates, private use and unassigned code points
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` is not acceptable text, or None when it is.

    Refused: a NUL anywhere (PostgreSQL cannot store it), a lone surrogate anywhere
    (it cannot be encoded), and a value made only of whitespace and invisible characters.

    >>> text_problem("Ada"), text_problem("\\x01\\u200b")
    (None, 'must contain a visible character')
    """
    if "\x00" in value:
        return "must not contain a NUL character"
    if _SURROGATE.search(value) is not None:  # a C scan: bodies run to 100,000 characters
        return "must not contain a lone surrogate"
    if all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in value):
        return "must contain a visible character"
    return None
