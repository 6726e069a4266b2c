"""The command line's one error type, at the bottom so every part of ``nnjax.cli`` can raise it."""

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit code 2."""
