"""Core: items, identities, outcomes, configuration (one override table), profiles, schemas, refusal phrases.

The bottom layer: plain data and pure functions that every other subpackage may import."""

__version__ = "0.1.0"
