"""The JSON API (FastAPI): ``create_app(settings, db)`` builds it."""

from opsdesk.api.app import create_app

__all__ = ["create_app"]
