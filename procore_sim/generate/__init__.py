"""Seeded generators of realistic Procore records, one function per stream."""
