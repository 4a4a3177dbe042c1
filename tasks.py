"""invoke tasks of this repository: rollsafe's own collection, reused in two lines."""

from rollsafe.invoke_tasks import namespace

__all__ = ["namespace"]
