"""Exception types for a user's mistakes that stop a command (exit status 2).

Findings about a config are values (see ``validate.findings``), not exceptions;
these are for things that make a command impossible: an unknown recipe, a
malformed override, an output file that already exists.
"""


class RecipeError(Exception):
    """Base class: the message is written for the user, without a traceback."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class OverrideError(RecipeError):
    """An override can't be parsed, or can't be applied to this config."""


class OutputExistsError(RecipeError):
    """The output file exists and ``--force`` was not given."""
