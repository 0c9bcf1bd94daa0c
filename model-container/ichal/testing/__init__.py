"""Helpers for tests and the local default (not used by the served container)."""
