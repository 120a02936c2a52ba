"""The one error type each mapper raises for a record it cannot map."""


class MapFnError(ValueError):
    """A record that a mapper cannot turn into a conversation; the message says why."""


class MedQAFormatError(MapFnError):
    """A MedQA record missing its question, options or answer, or with an inconsistent answer."""


class MSAgentFormatError(MapFnError):
    """An MSAgent-Bench record whose turns or tool-call markup can't be parsed."""


class GuanacoFormatError(MapFnError):
    """An openassistant-guanaco record the mapper can't read."""
