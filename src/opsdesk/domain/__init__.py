"""Entities, commands and invariants of the service desk; no storage here."""
