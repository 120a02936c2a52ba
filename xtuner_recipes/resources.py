"""Find the files that ship with the package: ``templates/`` and ``schemas/``.

An installed wheel carries them inside the package (``xtuner_recipes/templates``);
a source checkout or an editable install has them at the top of the repository.

    >>> resource_path("schemas", "settings.schema.json").name
    'settings.schema.json'
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(kind: str) -> Path:
    """The directory holding ``kind`` ("templates", "schemas" or "constraints")."""
    for candidate in (_HERE / kind, _HERE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"xtuner-recipes is installed without its {kind}/ directory (looked in {_HERE})")


def resource_path(kind: str, name: str) -> Path:
    """One file inside ``templates/`` or ``schemas/``."""
    return resource_dir(kind) / name
