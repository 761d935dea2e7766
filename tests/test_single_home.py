"""Every setting named in the layout issue has exactly one definition: a scan of the sources
(llcpkg/ and the notebooks' code) for literal assignments."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> dict[str, str]:
    out = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "llcpkg").rglob("*.py")}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        out[str(nb.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return out


def _hits(pattern: str) -> list[str]:
    rx = re.compile(pattern, re.M)
    return [f"{name}: {m.group(0)}" for name, text in _sources().items() for m in rx.finditer(text)]


def test_the_scan_sees_the_sources():
    assert len(_sources()) > 20 and any(n.endswith(".ipynb") for n in _sources())


@pytest.mark.parametrize("what, pattern, home", [
    ("the logit scale's default", r"^\s*DEFAULT_LOGIT_SCALE\s*=", "llcpkg/models.py"),
    ("the cache version", r"^\s*CACHE_VERSION\s*=", "llcpkg/cache.py"),
    ("the profile → epochs rules", r"^\s*EPOCH_RULES\b.*=", "llcpkg/profiles.py"),
    ("the epoch scaling", r"^def scaled_epochs\(", "llcpkg/profiles.py"),
    ("the default code length", r"^def default_bits\(", "llcpkg/codebooks.py"),
])
def test_one_definition(what, pattern, home):
    hits = _hits(pattern)
    assert len(hits) == 1 and hits[0].startswith(home + ":"), (what, hits)


def test_logit_scale_defaults_are_never_literals():
    assert _hits(r"logit_scale\s*:\s*str\s*=\s*[\"']") == []  # fields and parameters default to DEFAULT_LOGIT_SCALE


def test_phase2_lr_is_set_only_in_the_profiles():
    hits = _hits(r"phase2_lr\s*(:\s*float)?\s*=\s*[0-9]")
    assert hits and all(h.startswith("llcpkg/profiles.py:") for h in hits), hits


def test_epochs_are_not_typed_outside_the_profiles():
    # TrainConfig's own default (a bare config, no profile) is the one allowed literal
    hits = [h for h in _hits(r"epochs\s*(:\s*int)?\s*=\s*[1-9]") if not h.startswith("llcpkg/profiles.py:")]
    assert hits == ["llcpkg/train.py: epochs: int = 3"], hits


def test_the_profile_name_is_read_in_one_place():
    hits = _hits(r"environ\.get\([\"']LLC_PROFILE")  # every notebook calls profiles.default_profile_name()
    assert len(hits) == 1 and hits[0].startswith("llcpkg/profiles.py:"), hits


def test_the_library_never_imports_the_experiments():
    lib = {n: t for n, t in _sources().items() if n.startswith("llcpkg/") and not n.startswith("llcpkg/experiments/")}
    rx = re.compile(r"^\s*(from\s+(\.|llcpkg\.)experiments|import\s+llcpkg\.experiments)", re.M)
    assert [n for n, t in lib.items() if rx.search(t)] == []


def _exports() -> dict[str, object]:
    """Every constant the experiment modules export, by name (``__all__``)."""
    import importlib
    import pkgutil

    import llcpkg.experiments as E

    modules = [importlib.import_module(f"llcpkg.experiments.{i.name}") for i in pkgutil.iter_modules(E.__path__)]
    return {f"{m.__name__}.{n}": getattr(m, n) for m in modules for n in getattr(m, "__all__", [])}


def _constants() -> set[str]:
    """Every string constant the experiment modules export (table and column names among them)."""
    return {v for v in _exports().values() if isinstance(v, str)}


def _constant_names(value: str) -> list[str]:
    """Names (without their module) of the exported constants whose value is ``value``."""
    return sorted({k.rsplit(".", 1)[1] for k, v in _exports().items() if isinstance(v, str) and v == value})


def _table_names() -> set[str]:
    """Names of the committed result tables (``results/tables/<name>.csv``) the experiment modules define as constants."""
    return {v for v in _constants() if (ROOT / "results" / "tables" / f"{v}.csv").exists()}


def test_table_names_are_used_only_through_their_constants():
    names = _table_names()
    assert {"classification", "ablations_codebooks", "retrieval", "ood", "taxonomy", "compression",
            "compression_sweep", "decoding_cost_goals", "claims"} <= names  # the tables the claims read
    for name in names:
        q = rf"[\"']{re.escape(name)}[\"']"
        # a table named by its literal in the library: read, looked up, or keyed in a run's result
        used = _hits(rf"(read_table\(|\bt\(|tables\[){q}|{q}\s*:\s*\w+_table\(")
        defined = _hits(rf"^[A-Z0-9_, ]+=.*{q}")
        if not defined and name.endswith("_summary"):  # <table>_summary is defined as summary_name(<TABLE>)
            consts = _constant_names(name.removesuffix("_summary"))
            defined = _hits(rf"^[A-Z0-9_]+ = summary_name\({consts[0]}\)") if len(consts) == 1 else []
        assert used == [] and len(defined) == 1 and defined[0].startswith("llcpkg/experiments/"), (name, used, defined)


def test_notebooks_write_the_tables_their_modules_name():
    # the notebooks keep literal names: llcpkg.report finds a notebook's tables by reading them from its code
    import nbformat

    from llcpkg.report import saved_names

    written = {n for nb in (ROOT / "notebooks").glob("*.ipynb") for n in saved_names(nbformat.read(nb, 4), "write_table")}
    # every table a notebook writes is a module's constant (a renamed constant must be renamed in its notebook
    # too), and every committed table that is a constant is still written (tables not yet committed are new)
    assert written <= _constants(), sorted(written - _constants())
    assert _table_names() <= written, sorted(_table_names() - written)
