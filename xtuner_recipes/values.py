"""What counts as a number in a config, the way its consumers count: ``True`` is an int to Python, not to
torch's sampler; ``inf`` is a float, not a learning rate.

    >>> is_positive_int(2), is_positive_int(True), is_positive_int(2.0)
    (True, False, False)
    >>> is_number(float("nan")), is_positive_number(0.5)
    (False, True)
"""

import math


def is_int(value) -> bool:
    """A whole number that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_positive_int(value) -> bool:
    return is_int(value) and value > 0


def is_number(value) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_positive_number(value) -> bool:
    return is_number(value) and value > 0
