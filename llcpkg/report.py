"""The results as one offline HTML site: ``python -m llcpkg.report [--results DIR] [--screenshot PNG]``.

Builds ``<results>/report/`` from a results folder (``executed/``, ``tables/``, ``figures/``,
``provenance.json``):

- ``index.html``: the claims scoreboard (every row of ``tables/claims.csv``), a tally of its
  verdicts, one card per executed notebook (title, question, figures, links to its tables)
  and the run's provenance;
- ``notebooks/<name>.html``: each executed notebook converted by nbconvert (images embedded);
- ``tables/<name>.html`` and ``.csv``: every table, rendered and as written;
- ``figures/<name>.png``: the figures the cards show.

Pages load nothing from the network (the notebook template drops nbconvert's require.js,
MathJax, mermaid and widget scripts), carry no absolute path of the machine that ran or
built them, and no widget views (tqdm's progress bars, frozen at 0% outside a live kernel).
All HTML comes from the Jinja2 templates in ``llcpkg/templates``.
"""
from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import nbformat
import pandas as pd

from .profiles import get_profile
from .results import atomic_write, project_root

__all__ = ["WIDGET_VIEW", "drop_widgets", "path_replacements", "sanitise_paths", "saved_names",
           "NotebookCard", "notebook_card", "build_report", "launch_chromium", "screenshot", "main"]

TEMPLATES = Path(__file__).parent / "templates"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOT_RECORDED = "not recorded"
NOTEBOOK_CSS = "notebook.css"  # shared by the notebook pages, next to them
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# ---------------------------------------------------------------- cleaning executed notebooks

def drop_widgets(nb: nbformat.NotebookNode) -> bool:
    """Remove widget state (``metadata.widgets``) and every output that is a widget view, in place.

    A widget view's ``text/plain`` fallback is dropped too: for tqdm it is the bar as created
    ("0%| | 0/235"), which misstates a finished run. Returns True if anything was removed.
    """
    changed = nb.metadata.pop("widgets", None) is not None
    for cell in nb.cells:
        outputs = cell.get("outputs")
        if not outputs:
            continue
        kept = [o for o in outputs if WIDGET_VIEW not in o.get("data", {})]
        if len(kept) != len(outputs):
            cell.outputs, changed = kept, True
    return changed


def path_replacements(nb: nbformat.NotebookNode, results_dir: Path) -> list[tuple[str, str]]:
    """(absolute prefix, relative name) pairs for the folders a notebook's outputs may print.

    The run's results folder comes from papermill's ``output_path`` (``<results>/executed/…``)
    and is renamed to the profile's usual place relative to the project (``results``,
    ``.cache/smoke-results``); the project root at run time (that folder minus that suffix)
    and at build time become ``.``. Longest prefix first.
    """
    pm = nb.metadata.get("papermill", {})
    root = project_root()
    try:
        usual = get_profile(pm.get("parameters", {}).get("profile") or None).results_dir
        label = str(Path(usual).resolve().relative_to(root))
    except ValueError:
        label = results_dir.name
    pairs = {str(results_dir.resolve()): label, str(root): "."}
    out_path = Path(pm.get("output_path") or "")
    if out_path.is_absolute():
        run_results = out_path.parent.parent
        pairs[str(run_results)] = label
        suffix = Path(label).parts
        if run_results.parts[-len(suffix):] == suffix:
            pairs[str(Path(*run_results.parts[:-len(suffix)]))] = "."
    pairs = {k: v for k, v in pairs.items() if len(Path(k).parts) > 1}  # never rewrite "/"
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def sanitise_paths(nb: nbformat.NotebookNode, pairs: list[tuple[str, str]]) -> None:
    """Rewrite absolute prefixes in sources and text outputs, in place; drop papermill's paths."""

    def fix(text: str) -> str:
        for prefix, rel in pairs:
            text = text.replace(prefix, rel)
        return text

    pm = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        pm.pop(key, None)
    for cell in nb.cells:
        cell.source = fix(cell.source)
        for o in cell.get("outputs", []):
            if "text" in o:
                o.text = fix(o.text)
            if "traceback" in o:
                o.traceback = [fix(t) for t in o.traceback]
            if "evalue" in o:
                o.evalue = fix(o.evalue)
            for mime, value in o.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    o.data[mime] = fix(value)


# ---------------------------------------------------------------- what each notebook holds

def saved_names(nb: nbformat.NotebookNode, function: str) -> list[str]:
    """Name patterns passed to ``function(...)`` in the code cells as its 2nd argument or ``name=``
    (``save_figure(fig, "x", …)``, ``write_table(df, "x", …)``); f-string fields become ``*``."""
    names = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == function):
                continue
            args = node.args[1:2] + [k.value for k in node.keywords if k.arg == "name"]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.append(arg.value)
                elif isinstance(arg, ast.JoinedStr):
                    names.append("".join(v.value if isinstance(v, ast.Constant) else "*" for v in arg.values))
    return names


def _matching(patterns: list[str], files: list[Path]) -> list[Path]:
    """Files whose stem matches one of ``patterns``, in pattern order, each once."""
    out = []
    for pat in patterns:
        out += [f for f in files if fnmatch.fnmatchcase(f.stem, pat) and f not in out]
    return out


@dataclass
class NotebookCard:
    """One executed notebook as the index shows it."""

    name: str  # file stem, e.g. 01_classification
    title: str  # its first heading
    question: str  # the rest of its first markdown cell, as HTML
    figures: list[str] = field(default_factory=list)  # figure file names (report/figures/)
    tables: list[str] = field(default_factory=list)  # table stems (report/tables/<stem>.html)
    wall_s: float | None = None  # papermill's duration
    finished: str | None = None  # papermill's end time
    parameters: dict = field(default_factory=dict)  # papermill's parameters


def notebook_card(nb: nbformat.NotebookNode, name: str, figures: list[Path], tables: list[Path]) -> NotebookCard:
    """Title and question from the first markdown cell; figures and tables it saves, among those present."""
    from nbconvert.filters import markdown2html

    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    head, _, body = first.strip().partition("\n")
    title = head.lstrip("#").strip() if head.startswith("#") else name
    pm = nb.metadata.get("papermill", {})
    return NotebookCard(
        name=name, title=title, question=markdown2html(body if head.startswith("#") else first),
        figures=[f.name for f in _matching(saved_names(nb, "save_figure"), figures)],
        tables=[t.stem for t in _matching(saved_names(nb, "write_table"), tables)],
        wall_s=pm.get("duration"), finished=pm.get("end_time"), parameters=pm.get("parameters", {}))


# ---------------------------------------------------------------- building the site

def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["duration"] = lambda s: NOT_RECORDED if s is None else (
        f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {round(s % 60):02d} s")
    env.filters["cell"] = lambda v: "" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else str(v)
    return env


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="llc_notebook", extra_template_basedirs=[str(TEMPLATES)],
                        embed_images=True)


def _lab_css(exporter) -> str:
    """The stylesheet nbconvert's lab template inlines in every page (index.css + light theme)."""
    for d in map(Path, exporter.template_paths):
        if d.name == "lab" and (d / "static" / "index.css").exists():
            return "\n".join((d / "static" / f).read_text(encoding="utf-8") for f in ("index.css", "theme-light.css"))
    raise FileNotFoundError("nbconvert's lab template (static/index.css) not found")


def _git_head() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def build_report(results_dir: str | Path) -> Path:
    """Build ``<results_dir>/report/`` (see the module docstring); return the index path.

    The site is built in ``<results_dir>/.tmp-report`` and then replaces the old one, so an
    interrupted build leaves the previous report whole."""
    results_dir = Path(results_dir)
    final, out = results_dir / "report", results_dir / ".tmp-report"
    if out.exists():
        shutil.rmtree(out)
    env, exporter = _environment(), _exporter()
    figures = sorted((results_dir / "figures").glob("*.png"))
    tables = sorted((results_dir / "tables").glob("*.csv"))

    cards = []
    for path in sorted((results_dir / "executed").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        drop_widgets(nb)
        card = notebook_card(nb, path.stem, figures, tables)
        sanitise_paths(nb, path_replacements(nb, results_dir))
        nb.metadata["title"] = card.title
        html, _ = exporter.from_notebook_node(nb, resources={"report_index": "../index.html",
                                                             "notebook_css": NOTEBOOK_CSS})
        _write(out / "notebooks" / f"{path.stem}.html", html)
        cards.append(card)
    _write(out / "notebooks" / NOTEBOOK_CSS, _lab_css(exporter))
    shown = {f for c in cards for f in c.figures}
    listed = {t for c in cards for t in c.tables}
    extra_figures = [f.name for f in figures if f.name not in shown]
    extra_tables = [t.stem for t in tables if t.stem not in listed]

    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for f in figures:
        shutil.copy2(f, out / "figures" / f.name)
    page = env.get_template("table.html.j2")
    for t in tables:
        shutil.copy2(t, out / "tables" / t.name)
        _write(out / "tables" / f"{t.stem}.html", page.render(name=t.stem, df=pd.read_csv(t)))

    claims, questions = (pd.read_csv(f) if f.exists() else None
                         for f in (results_dir / "tables" / "claims.csv", results_dir / "tables" / "open_questions.csv"))
    prov_file = results_dir / "provenance.json"
    provenance = json.loads(prov_file.read_text()) if prov_file.exists() else None
    _write(out / "index.html", env.get_template("index.html.j2").render(
        claims=claims, questions=questions, cards=cards, provenance=provenance, not_recorded=NOT_RECORDED,
        runs=_run_rows(cards, provenance), profile=_profile(cards, provenance), extra_figures=extra_figures, extra_tables=extra_tables,
        build_commit=None if provenance and provenance.get("commit") else _git_head(),
        **(_scoreboard_view(claims) if claims is not None else {})))
    if final.exists():
        shutil.rmtree(final)
    os.replace(out, final)
    return final / "index.html"


def _scoreboard_view(claims: pd.DataFrame) -> dict:
    """Columns to show (the usual five first, then any others such as an interval or seeds),
    the number of distinct claims, and (verdict, rows) counts in a fixed verdict order."""
    from .verdicts import FAILS, HOLDS, NOT_RUN, PARTLY

    first = [c for c in ("verdict", "claim", "dataset", "paper", "ours") if c in claims.columns]
    counts = claims["verdict"].value_counts()
    order = [v for v in (HOLDS, PARTLY, FAILS, NOT_RUN) if v in counts] + \
            [v for v in counts.index if v not in (HOLDS, PARTLY, FAILS, NOT_RUN)]
    return {"claim_columns": first + [c for c in claims.columns if c not in first],
            "n_claims": claims["claim"].nunique(), "tally": [(v, int(counts[v])) for v in order]}


def _profile(cards: list[NotebookCard], provenance: dict | None) -> str:
    """The run's profile: provenance.json's, else the notebooks' papermill ``profile`` parameters."""
    if provenance and provenance.get("profile"):
        return provenance["profile"]
    names = sorted({str(c.parameters["profile"]) for c in cards if "profile" in c.parameters})
    return ", ".join(names) + " (papermill parameters)" if names else NOT_RECORDED


def _run_rows(cards: list[NotebookCard], provenance: dict | None) -> list[dict]:
    """Per notebook: parameters, seeds, wall time and end, from provenance.json where it has the
    notebook, else from the executed notebook's papermill metadata (which records no seeds)."""
    recorded = (provenance or {}).get("notebooks") or {}
    rows = []
    for c in cards:
        r = recorded.get(c.name)
        rows.append({"name": c.name, "parameters": r.get("parameters"), "seeds": r.get("seeds"),
                     "wall_s": r.get("wall_s"), "finished": r.get("finished"), "source": "provenance.json"}
                    if r else {"name": c.name, "parameters": c.parameters, "seeds": None, "wall_s": c.wall_s,
                               "finished": c.finished, "source": "papermill metadata of the executed notebook"})
    return rows


# ---------------------------------------------------------------- browser

def launch_chromium(playwright):
    """Debian's chromium (never a downloaded browser), headless, with background networking off."""
    exe = shutil.which("chromium")
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    return playwright.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)


def screenshot(index: Path, png: Path, width: int = 1280, height: int = 1000) -> Path:
    """Save the top ``width × height`` pixels of the report's index page as a PNG."""
    from playwright.sync_api import sync_playwright

    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(index.resolve().as_uri())
            page.screenshot(path=str(png))
        finally:
            browser.close()
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=None,
                    help="results folder (default: the $LLC_PROFILE profile's, e.g. results/ for cpu)")
    ap.add_argument("--screenshot", type=Path, default=None, help="also save a PNG of the index page here")
    args = ap.parse_args(argv)
    results_dir = args.results or get_profile().results_dir
    if not (results_dir / "executed").is_dir():
        print(f"report: no executed notebooks in {results_dir}/executed", file=sys.stderr)
        return 2
    index = build_report(results_dir)
    print(f"report: {index}")
    if args.screenshot:
        print(f"report: screenshot {screenshot(index, args.screenshot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
