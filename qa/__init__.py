"""Retrieval QA with verbatim cited answers."""
