"""The base of every error that is the user's to fix: a bad parameter, raw file or task folder.

It is a `ValueError` for library callers and a `click.ClickException` for `kedro run`, which then
prints the message as one `Error: ...` line instead of a stack trace.
"""

from __future__ import annotations

import click


class UserInputError(ValueError, click.ClickException):
    """Raised with a message that names the file, line or parameter and says what to do."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        click.ClickException.__init__(self, message)

    def __str__(self) -> str:
        return self.message
