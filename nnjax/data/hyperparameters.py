"""Checks for hyper-parameters: rates in an interval, positive numbers, positive integers.

They live in :mod:`nnjax.checks` (the one place where every entry point's settings are checked)
and are re-exported here, where the host-side data helpers have always offered them. Errors name
the argument, what was expected and what came; a wrong type raises ``TypeError``, a bad value
``ValueError``. Traced values pass unchanged; arrays are checked element by element.

Example:
  >>> check_fraction(0.5, "dropout")
  0.5
  >>> check_positive_int(32, "batch_size")
  32
"""

from __future__ import annotations

from nnjax.checks import check_fraction, check_positive, check_positive_int

__all__ = ["check_fraction", "check_positive", "check_positive_int"]
