"""Sub-commands: typed functions taking the config first, and their CLI registration.

Why: the console script, the invoke tasks and the nox sessions call the same
functions (``rollsafe.commands.table.release_table(config, ...)``), so there
is one behaviour to test.  Each module defines ``register(registry)`` for
`rollsafe.cli`.
"""
