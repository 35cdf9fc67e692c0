"""Consentry: the system of record for consent."""

__version__ = "0.1.0"
