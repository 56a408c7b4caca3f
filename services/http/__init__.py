from services.http.app import build_app

__all__ = ["build_app"]
