"""The command line of the project's local services (``python -m scripts.s3 start|stop|status``,
``python -m scripts.stack ...``): one sub-command per argument, a usage text for any other."""

from __future__ import annotations

from collections.abc import Callable


def run_command(argv: list[str], commands: dict[str, Callable[[], int | None]], usage: str | None) -> int:
    """Run the sub-command named by ``argv[1]`` (default ``status``); its exit code (0 when it
    returns None), or print ``usage`` and return 2 for a name it does not know."""
    name = argv[1] if len(argv) > 1 else "status"
    if name not in commands:
        print(usage)
        return 2
    return commands[name]() or 0
