"""OsteoCDS message contracts: the only place message shapes are defined.

Services import from here and from `shared`; never from each other.
"""

from contracts.rules import RULESET_VERSION

__all__ = ["RULESET_VERSION"]
