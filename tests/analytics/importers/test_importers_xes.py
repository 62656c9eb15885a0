"""XES imports, and refusal of XML that declares entities."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from opsdesk.analytics.importers import ImportRefused, import_log
from opsdesk.analytics.schema import CASE_EVENTS

XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <string key="concept:name" value="the log"/>
  <trace>
    <string key="concept:name" value="case-1"/>
    <string key="variant" value="v1"/>
    <event>
      <string key="concept:name" value="Register"/>
      <date key="time:timestamp" value="2024-01-01T10:00:00.000+01:00"/>
      <string key="org:group" value="Front"/>
      <string key="org:resource" value="ann"/>
      <string key="lifecycle:transition" value="start"/>
      <int key="cost" value="12"/>
    </event>
    <event>
      <string key="concept:name" value="Escalate"/>
      <date key="time:timestamp" value="2024-01-01T11:00:00.000+01:00"/>
      <string key="org:group" value="Back"/>
      <string key="org:resource" value="bob"/>
      <string key="lifecycle:transition" value="complete"/>
      <boolean key="urgent" value="true"/>
    </event>
  </trace>
  <trace>
    <event>
      <string key="concept:name" value="Orphan"/>
      <date key="time:timestamp" value="2024-01-02T10:00:00Z"/>
    </event>
    <string key="concept:name" value="case-2"/>
  </trace>
</log>
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE log [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<log><trace><string key="concept:name" value="&xxe;"/><event>
<date key="time:timestamp" value="2024-01-01T10:00:00Z"/></event></trace></log>
"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<log><trace><string key="concept:name" value="&lol9;"/></trace></log>
"""


@pytest.mark.parametrize("name", ["log.xes", "log.xes.gz"])
def test_xes_maps_standard_extensions(tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    data = XES.encode()
    src.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    result = import_log(src, tmp_path / "out.parquet")
    assert pq.read_schema(result.out) == CASE_EVENTS
    rows = pq.read_table(result.out).to_pylist()
    assert [(r["case_id"], r["activity"], r["type"], r["team"], r["agent"]) for r in rows] == [
        ("case-1", "Register", "ticket.created", "Front", "ann"),
        ("case-1", "Escalate", "ticket.transferred", "Back", "bob"),
        ("case-2", "Orphan", "ticket.created", None, None),
    ]
    assert rows[0]["at"].isoformat() == "2024-01-01T09:00:00+00:00"
    # without a status map, lifecycle:transition stays an attribute
    assert rows[0]["status"] is None
    assert json.loads(rows[0]["attrs"]) == {
        "variant": "v1",
        "lifecycle:transition": "start",
        "cost": 12,
    }
    assert json.loads(rows[1]["attrs"])["urgent"] is True
    assert (result.cases, result.events) == (2, 3)


def test_xes_lifecycle_as_status_with_a_map(tmp_path: Path) -> None:
    src = tmp_path / "log.xes"
    src.write_text(XES)
    result = import_log(src, tmp_path / "out.parquet", status_map={"start": "open"}, max_rejects=5)
    rows = pq.read_table(result.out).to_pylist()
    assert [r["status"] for r in rows] == ["open", None]
    assert result.rejected == 1  # "complete" is not in the map: rejected, with its reason
    assert result.rejects_path is not None
    assert "unmapped status 'complete'" in result.rejects_path.read_text()


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_entities_are_refused_and_nothing_written(tmp_path: Path, payload: str) -> None:
    src = tmp_path / "evil.xes"
    src.write_text(payload)
    with pytest.raises(ImportRefused, match="DTD or entities"):
        import_log(src, tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.xes"]


def test_not_xml_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "broken.xes"
    src.write_text("<log><trace>")
    with pytest.raises(ImportRefused, match="not a readable XES"):
        import_log(src, tmp_path / "out.parquet")
