"""Imports every table module so Base.metadata knows the whole schema (for Alembic)."""


def import_all_models() -> None:
    """Registers all SQLAlchemy models on the shared metadata."""
    import app.alerts.models
    import app.audit.models
    import app.console.models
    import app.credentials.models
    import app.installations.models
    import app.runs.models
    import app.webhooks.models  # noqa: F401
