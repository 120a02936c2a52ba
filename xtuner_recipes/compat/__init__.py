"""Every private attribute of a dependency this project relies on, one module per library.

Nothing else in the package reaches behind a library's public API; ``tests/test_compat.py`` has one test
per private used here, so an upgrade that removes one fails there, by name, not somewhere downstream.
"""
