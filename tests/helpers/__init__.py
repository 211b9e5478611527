"""Helpers the tests share: stack files run offline, a real nginx on loopback, PROXY v2, test certificates."""
