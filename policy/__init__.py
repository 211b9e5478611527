"""Pulumi CrossGuard policy pack: see __main__.py; the rules live in rules.py."""
