"""Pulumi components, one Azure concept each: the program's building blocks and the package `pls-saas` that
customers add with `pulumi package add` (__main__.py serves them, schema.json records their contract)."""
