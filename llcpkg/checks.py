"""Field checks for the configuration dataclasses, called from their ``__post_init__``.

Each check reads one field of a (frozen) dataclass, raises ``TypeError`` for a wrong type
and ``ValueError`` for a value out of range, naming ``Class.field``, and normalises numpy
scalars to Python ones (so ``np.int64(8)`` and ``8`` give the same cache key). bool is not
accepted where a number is expected.
"""
from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Iterable

__all__ = ["require_int", "require_real", "require_bool", "require_choice", "require_str"]


_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _name(cfg: Any, field: str) -> str:
    return f"{type(cfg).__name__}.{field}"


def _set(cfg: Any, field: str, value: Any) -> None:
    object.__setattr__(cfg, field, value)  # works on frozen dataclasses


def require_int(cfg: Any, field: str, minimum: int | None = None, optional: bool = False) -> None:
    """``cfg.field`` is an int (``None`` too if ``optional``), at least ``minimum``."""
    v = getattr(cfg, field)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{_name(cfg, field)} must be {kind}; got {v!r} ({type(v).__name__})")
    if type(v) is not int:
        _set(cfg, field, v := int(v))
    if minimum is not None and v < minimum:
        raise ValueError(f"{_name(cfg, field)} must be >= {minimum}; got {v}")


def require_real(cfg: Any, field: str, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None, le: float | None = None) -> None:
    """``cfg.field`` is a finite real number in the given bounds (gt/ge below, lt/le above)."""
    v = getattr(cfg, field)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{_name(cfg, field)} must be a number; got {v!r} ({type(v).__name__})")
    if not isinstance(v, (int, float)):
        _set(cfg, field, v := float(v))
    if not math.isfinite(v):
        raise ValueError(f"{_name(cfg, field)} must be finite; got {v}")
    for op, bound in ((">", gt), (">=", ge), ("<", lt), ("<=", le)):
        if bound is not None and not _OPS[op](v, bound):
            raise ValueError(f"{_name(cfg, field)} must be {op} {bound}; got {v}")


def require_bool(cfg: Any, field: str) -> None:
    """``cfg.field`` is True or False (numpy bools are converted)."""
    v = getattr(cfg, field)
    if type(v).__name__ == "bool_":
        _set(cfg, field, v := bool(v))
    if not isinstance(v, bool):
        raise TypeError(f"{_name(cfg, field)} must be True or False; got {v!r} ({type(v).__name__})")


def require_str(cfg: Any, field: str) -> None:
    """``cfg.field`` is a string."""
    v = getattr(cfg, field)
    if not isinstance(v, str):
        raise TypeError(f"{_name(cfg, field)} must be a string; got {v!r} ({type(v).__name__})")


def require_choice(cfg: Any, field: str, choices: Iterable[str]) -> None:
    """``cfg.field`` is one of ``choices``."""
    require_str(cfg, field)
    choices = list(choices)
    if getattr(cfg, field) not in choices:
        raise ValueError(f"{_name(cfg, field)} must be one of {choices}; got {getattr(cfg, field)!r}")
