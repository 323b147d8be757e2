"""The tap's settings: their schema, the checks of their values, and the typed ``Settings``."""
