"""Sub-commands: typed functions taking the config first, and the one description of each.

Why: the console script, the invoke tasks and the nox sessions call the same
functions (``rollsafe.commands.table.release_table(config, ...)``), so there
is one behaviour to test.  `rollsafe.commands._spec` describes every
command's flags once; each module here parses nothing itself: its
``handle_<command>`` takes the parsed flags, calls one library function and
formats the result.
"""
