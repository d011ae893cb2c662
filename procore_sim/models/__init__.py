"""Procore's published list-item models, as data (see published.py for the source)."""

from procore_sim.models.published import PUBLISHED_MODELS, PublishedModel

__all__ = ["PUBLISHED_MODELS", "PublishedModel"]
