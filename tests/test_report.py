"""The report builder on tiny synthetic results folders: widget views dropped, machine paths
rewritten, figures and tables found in the code that saved them, and an offline site built."""
import base64
import json
import re

import nbformat
import pandas as pd

from llcpkg.report import build_report, drop_widgets, path_replacements, sanitise_paths, saved_names

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
WIDGET = {"application/vnd.jupyter.widget-view+json": {"model_id": "m", "version_major": 2, "version_minor": 0},
          "text/plain": "train 1/3:   0%|          | 0/235 [00:00<?, ?it/s]"}


def _notebook(sources, outputs=(), papermill=None) -> nbformat.NotebookNode:
    """Markdown cells for strings starting with '#', else code cells; ``outputs`` go to the last code cell."""
    nb = nbformat.v4.new_notebook()
    for src in sources:
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if src.startswith("#") else nbformat.v4.new_code_cell(src))
    code = [c for c in nb.cells if c.cell_type == "code"]
    if code:
        code[-1].outputs = [nbformat.from_dict(o) for o in outputs]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if papermill is not None:
        nb.metadata["papermill"] = papermill
    return nb


def test_drop_widgets_removes_state_and_views_only():
    text = {"output_type": "stream", "name": "stdout", "text": "done\n"}
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBO", "text/plain": "<Figure>"}}
    widget = {"output_type": "display_data", "metadata": {}, "data": WIDGET}
    nb = _notebook(["x = 1"], [widget, text, widget, image])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    assert drop_widgets(nb)
    assert "widgets" not in nb.metadata
    assert [o.get("name") or sorted(o["data"]) for o in nb.cells[0].outputs] == ["stdout", ["image/png", "text/plain"]]
    assert not drop_widgets(nb)  # nothing left to drop


def test_sanitise_paths_rewrites_run_and_build_roots(monkeypatch, tmp_path):
    monkeypatch.delenv("LLC_RESULTS", raising=False)
    monkeypatch.setenv("LLC_ROOT", str(tmp_path / "here"))
    pm = {"parameters": {"profile": "cpu"}, "input_path": "notebooks/01.ipynb",
          "output_path": "/elsewhere/proj/results/executed/.tmp-01.ipynb", "duration": 3.0}
    out = {"output_type": "stream", "name": "stdout",
           "text": "saved /elsewhere/proj/results/figures/a.png from /elsewhere/proj/notebooks and "
                   f"{tmp_path}/here/results/tables/t.csv\n"}
    nb = _notebook(["print(1)"], [out], papermill=pm)
    sanitise_paths(nb, path_replacements(nb, tmp_path / "here" / "results"))
    assert nb.cells[0].outputs[0].text == "saved results/figures/a.png from ./notebooks and results/tables/t.csv\n"
    assert "input_path" not in nb.metadata.papermill and "output_path" not in nb.metadata.papermill
    assert nb.metadata.papermill.duration == 3.0


def test_saved_names_reads_literal_and_fstring_names():
    nb = _notebook(['save_figure(fig, "classification", P.results_dir)',
                    'for name in ("a", "b"):\n    save_figure(fig, f"pr_{name}", P.results_dir)',
                    '%time write_table(df, "skipped", d)',  # a magic: not Python, ignored
                    'write_table(df, "table", results_dir)\nresults.write_table(df, name="kw", results_dir=d)'])
    assert saved_names(nb, "save_figure") == ["classification", "pr_*"]
    assert saved_names(nb, "write_table") == ["table", "kw"]


def _results(tmp_path, provenance=None):
    res = tmp_path / "results"
    for sub in ("executed", "figures", "tables"):
        (res / sub).mkdir(parents=True)
    (res / "figures" / "pr_a.png").write_bytes(PNG)
    (res / "figures" / "stray.png").write_bytes(PNG)
    pd.DataFrame({"x": [1.0, 2.5]}).to_csv(res / "tables" / "table.csv", index=False)
    pd.DataFrame({"claim": ["A", "B", "C"], "paper": ["p"] * 3, "dataset": ["d"] * 3, "ours": ["o"] * 3,
                  "verdict": ["holds", "partly", "holds"], "interval": ["[1, 2]", "", "[3, 4]"]}
                 ).to_csv(res / "tables" / "claims.csv", index=False)
    widget = {"output_type": "display_data", "metadata": {}, "data": WIDGET}
    nb = _notebook(["# 01 — A toy\n\nDoes the **toy** work?", 'save_figure(fig, f"pr_{n}", d)\nwrite_table(t, "table", d)'],
                   [widget], papermill={"parameters": {"profile": "cpu"}, "duration": 75.0,
                                        "end_time": "2026-01-01T00:00:00"})
    nbformat.write(nb, res / "executed" / "01_toy.ipynb")
    if provenance:
        (res / "provenance.json").write_text(json.dumps(provenance))
    return res


def test_build_report_offline_site(tmp_path):
    index = build_report(_results(tmp_path))
    report = index.parent
    html = index.read_text()
    assert html.count('class="verdict-') == 3 and "interval" in html and "[3, 4]" in html
    assert "A toy" in html and "<strong>toy</strong>" in html and 'src="figures/pr_a.png"' in html
    assert 'href="tables/table.html"' in html and 'src="figures/stray.png"' in html  # unclaimed figure still shown
    assert "not recorded" in html and "1 min 15 s" in html  # wall time from papermill's metadata
    assert "cpu (papermill parameters)" in html
    page = (report / "notebooks" / "01_toy.html").read_text()
    assert "0/235" not in page and "widget" not in page.lower().replace("jp-widget", "")
    for f in report.rglob("*.html"):
        assert not re.search(r'(src|href)="(https?:)?//', f.read_text()), f.name
    assert (report / "tables" / "table.csv").exists() and "2.5" in (report / "tables" / "table.html").read_text()


def test_rebuild_replaces_the_report(tmp_path):
    res = _results(tmp_path)
    build_report(res)
    (res / "report" / "stale.html").write_text("old")
    (res / "tables" / "table.csv").unlink()
    index = build_report(res)
    assert not (index.parent / "stale.html").exists() and not (index.parent / "tables" / "table.html").exists()
    assert not (res / ".tmp-report").exists()


def test_build_report_shows_recorded_provenance(tmp_path):
    prov = {"commit": "abc123", "dirty": True, "profile": "cpu", "created": "2026-01-01T00:00:00",
            "environment": {"python": "3.11", "torch": "2.14.1"},
            "notebooks": {"01_toy": {"parameters": {"profile": "cpu"}, "seeds": [0, 1], "wall_s": 5.0,
                                     "finished": "2026-01-01T00:01:00"}}}
    html = build_report(_results(tmp_path, prov)).read_text()
    assert "abc123 (uncommitted changes)" in html and "0, 1" in html and "5.0 s" in html
    assert "built at commit" not in html
