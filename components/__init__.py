"""Reusable Pulumi components, one Azure concept each."""
