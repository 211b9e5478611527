"""Upkeep of the repository: generated docs, the component package's schema, the benchmark, scale scenarios."""
