"""A notebook's papermill parameters: read from its ``parameters`` cell, checked before any
training, and turned into a run name.

Values on the command line are Python literals (``-p bits 16``, ``-p datasets "['mnist']"``);
a value must have the type of the parameter's default (an int is accepted for a float, a list
for a tuple; a ``None`` default accepts anything). Unknown names are an error.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

__all__ = ["ParameterError", "read_parameters", "check_parameters", "custom_parameters", "run_name"]

NOT_CUSTOM = ("profile",)  # chosen by the profile itself (and its results folder), never part of a run name


class ParameterError(ValueError):
    """A papermill parameter the notebook does not declare, or a value of the wrong type."""


def read_parameters(nb_path: str | Path) -> dict[str, object]:
    """``{name: default}`` of the notebook's cell tagged ``parameters``, in the cell's order ({} if none).

    Names are the cell's top-level assignment targets (``a, b = 1, 2`` gives two); defaults are
    the values after executing the cell, as papermill's kernel would (``os.environ.get(...)`` included).
    papermill's own ``inspect_notebook`` is not used: it skips lines it cannot parse (tuple
    targets, an apostrophe in a comment) without an error.
    """
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as e:
        raise ParameterError(f"the parameters cell of {Path(nb_path).name} is not valid Python: {e}") from e
    names: list[str] = []
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        for t in targets:
            names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    ns: dict = {}
    try:
        exec(compile(tree, str(nb_path), "exec"), ns)  # the notebook's own code, run by papermill anyway
    except Exception as e:
        raise ParameterError(f"the parameters cell of {Path(nb_path).name} does not run: {type(e).__name__}: {e}") from e
    return {n: ns[n] for n in dict.fromkeys(names)}


def _kind(default: object) -> tuple[tuple[type, ...], str]:
    """(accepted types, a name for messages) for a default value."""
    if isinstance(default, bool):
        return (bool,), "a bool (True or False)"
    if isinstance(default, int):
        return (int,), "an int"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, (list, tuple)):
        return (list, tuple), "a list"
    if isinstance(default, dict):
        return (dict,), "a dict"
    if isinstance(default, str):
        return (str,), "a string"
    return (type(default),), f"a {type(default).__name__}"


def _example(name: str, kind: str, value: object) -> str:
    """A corrected ``-p`` for a mistyped value, when one can be guessed."""
    if kind == "a list":
        items = [x.strip().strip("'\"") for x in str(value).strip("[]()").split(",") if x.strip()]
        return f" Pass a Python list in quotes, e.g. -p {name} \"{items!r}\"."
    if kind == "a string":
        return f" Quote it as a Python string, e.g. -p {name} \"'{value}'\"."
    return ""


def check_parameters(params: dict, defaults: dict, notebook: str) -> None:
    """Raise :class:`ParameterError` for a name not in ``defaults`` or a value whose type does not
    match its default's."""
    unknown = [n for n in params if n not in defaults]
    if unknown:
        raise ParameterError(f"unknown parameter{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} for "
                             f"{notebook}; its parameters are: {', '.join(defaults) or '(none)'}")
    for name, value in params.items():
        default = defaults[name]
        if default is None:
            continue
        types, kind = _kind(default)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            got = f"the string {value!r}" if isinstance(value, str) else f"{type(value).__name__} {value!r}"
            raise ParameterError(f"parameter {name!r} of {notebook} takes {kind} (default {default!r}), got {got}."
                                 + _example(name, kind, value))


def _same(a: object, b: object) -> bool:
    """Equal values, a list equal to a tuple with the same items."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def custom_parameters(params: dict, defaults: dict) -> dict:
    """The parameters whose value differs from the notebook's default (``profile`` excluded)."""
    return {n: v for n, v in params.items() if n not in NOT_CUSTOM and not (n in defaults and _same(v, defaults[n]))}


def _text(value: object) -> str:
    """A value as a short string: lists joined by commas, dict items as key-value."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(_text, value))
    if isinstance(value, dict):
        return ",".join(f"{k}-{_text(v)}" for k, v in value.items())
    return str(value)


def run_name(stem: str, custom: dict, max_len: int = 120) -> str:
    """``{stem}__{name}={value}__...`` over ``custom`` sorted by name, e.g. ``01_classification__bits=16__seed=1``.

    Characters outside ``[A-Za-z0-9._,=-]`` become ``-``; when that loses information, or the
    name is longer than ``max_len``, 8 hex digits of a hash of the parameters are appended so that
    two different runs never share a folder.
    """
    raw = "__".join([stem, *(f"{n}={_text(custom[n])}" for n in sorted(custom))])
    name = re.sub(r"[^A-Za-z0-9._,=-]", "-", raw)
    if name != raw or len(name) > max_len:
        digest = hashlib.sha1(json.dumps(custom, sort_keys=True, default=repr).encode()).hexdigest()[:8]
        name = f"{name[:max_len]}__{digest}"
    return name
