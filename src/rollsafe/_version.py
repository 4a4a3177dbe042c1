"""rollsafe's version, in a module of its own so that low layers can read it cheaply."""

__version__ = "0.1.0"
