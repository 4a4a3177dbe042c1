"""What a command module uses to add its sub-commands to the console script.

Why here and not in the CLI: command modules sit below the CLI; they must
not import it, so the registry they are handed is defined at their level.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from rollsafe.config import Config

#: A sub-command handler: the loaded config and the parsed flags in, an exit code out.
Handler = Callable[[Config, argparse.Namespace], int]


@dataclass
class Registry:
    """What command modules use to add their sub-commands."""

    subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
    common: argparse.ArgumentParser

    def add(self, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        """Add sub-command ``name`` with the common options; returns its parser for flags."""
        parser = self.subparsers.add_parser(
            name, help=help, description=help, parents=[self.common]
        )
        parser.set_defaults(handler=handler)
        return parser
