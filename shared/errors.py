"""Errors the runtime understands. Pure rule and parser code may raise them (no I/O imported here)."""


class Rejected(Exception):
    """Clinically or structurally invalid input (unknown unit, implausible value, malformed message).
    The record goes to the dead-letter topic with this reason; processing goes on."""
