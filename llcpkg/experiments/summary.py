"""Notebook 99: the claims scoreboard, every claim of the two papers checked against our tables.

Each experiment module's ``verdicts(tables)`` returns the claims rows (``claim, paper, dataset,
ours, verdict``) of the tables it produces, each verdict computed by a rule stated in the rule's
docstring, never typed; a table that is missing gives the verdict "not run"
(:func:`llcpkg.verdicts.collect`). This module collects them, answers the reviewers' open
questions from the same tables, and writes the README's scoreboard block.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from ..results import atomic_write, read_table
from ..seeds import SEED
from ..verdicts import CLAIM_COLUMNS, KINDS, Tables, Verdict, pct
from . import ablations, adequacy, classification, compression, decoding_cost, ood, retrieval, taxonomy

__all__ = ["CLAIMS_TABLE", "QUESTIONS_TABLE", "SEED_COVERAGE", "TREND_COVERAGE", "trend_coverage", "FAMILIES", "QUESTIONS", "CLAIM_COLUMNS", "QUESTION_COLUMNS", "table_reader", "scoreboard",
           "seed_coverage", "describe_seed_coverage", "tally",
           "update_readme", "START", "END"]

FAMILIES = (classification, ablations, retrieval, ood, taxonomy, compression, decoding_cost, adequacy)  # scoreboard order
CLAIMS_TABLE, QUESTIONS_TABLE, SEED_COVERAGE = "claims", "open_questions", "seed_coverage"  # tables (results/tables/<name>.csv)
TREND_COVERAGE = "trend_coverage"  # every claim that does not hold here, with its compute trend (notebook 08) or why none
QUESTION_COLUMNS = ["question", "dataset", "answer"]


# ----------------------------------------------------------------------------- open questions
def _q_ties(t: Tables) -> list[dict]:
    C = classification
    return [{"question": "How frequent are MHD ties, and does breaking them by bit scores help?", "dataset": r["dataset"],
             "answer": f"k={r['bits']}: {pct(r[C.TIE_RATE + ' mean'])} of decisions tied; score tie-break "
                       f"{pct(r[C.PHASE2_MHD + ' mean'])} → {pct(r[C.PHASE2_MHD_SCORE + ' mean'])} "
                       f"(means over {r['seeds']} seed{'s' * (r['seeds'] != 1)})"}
            for _, r in t(C.CLASSIFICATION_SUMMARY).iterrows()]


def _q_cost(t: Tables) -> list[dict]:
    D = decoding_cost
    return [{"question": "What does decoding cost as L grows?", "dataset": "random codes",
             "answer": f"{r[D.GOAL]} (batch {r['batch']}): {r['measured']:.3g} (goal {r['target']}: "
                       f"{'met' if r[D.MET] else 'missed'})"} for _, r in t(D.GOALS).iterrows()]


def _q_ball(t: Tables) -> list[dict]:
    rows = []
    for (setting, head), g in t(ablations.BALL_TABLE).groupby(["setting", ablations.HEAD], sort=False):
        parts = [f"{r['decoder']} {pct(r['accuracy'])} @ {r['lookups per query']:.1f} lookups" for _, r in g.iterrows()]
        rows.append({"question": "Is there a decoder between ED and MHD?", "dataset": f"{setting} ({head} phase 2)",
                     "answer": "; ".join(parts)})
    return rows


def _q_instance_codes(t: Tables) -> list[dict]:
    return [{"question": "What is special about the instance codes?", "dataset": r["dataset"],
             "answer": f"{int(r['distinct instance codes'])} distinct codes over {int(r['instances'])} images "
                       f"({r['distinct if uniform']:.0f} if uniform); {pct(r['on own class code'])} on their own class "
                       f"code; mean radius {r['radius mean']:.2f} bits; mean |bit correlation| {r['bit |corr| mean']:.2f}"}
            for _, r in t(taxonomy.INSTANCE_CODES).iterrows()]


def _q_overhead(t: Tables) -> list[dict]:
    return [{"question": "What does HFH cost in time against HashedNets and a dense net?", "dataset": f"{r['net']}",
             "answer": f"{r['model']}: training step {r['train_rel']:.2f}×, inference {r['infer_rel']:.2f}×, "
                       f"materialised inference {r['materialised_rel']:.2f}× the dense net"}
            for _, r in t(compression.OVERHEAD).iterrows() if r["model"] != "dense"]


QUESTIONS: dict[str, Callable[[Tables], list[dict]]] = {
    "ties": _q_ties, "decoding cost": _q_cost, "ball decoders": _q_ball, "instance codes": _q_instance_codes,
    "HFH overhead": _q_overhead, "training adequacy": adequacy.open_questions}


# ----------------------------------------------------------------------------- the scoreboard
def table_reader(results_dir: str | Path) -> Tables:
    """``name -> DataFrame`` over ``results_dir/tables``, each table read once; a missing table
    raises FileNotFoundError naming the table, not this machine's path."""
    tables: dict[str, pd.DataFrame] = {}

    def t(name: str) -> pd.DataFrame:
        if name not in tables:
            try:
                tables[name] = read_table(name, results_dir)
            except FileNotFoundError:
                raise FileNotFoundError(f"no table {name}.csv") from None
        return tables[name]

    return t


def scoreboard(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims, questions) DataFrames computed from the tables under ``results_dir``."""
    t = table_reader(results_dir)
    claims = [row for family in FAMILIES for row in family.verdicts(t)]
    questions = []
    for name, ask in QUESTIONS.items():
        try:
            questions += ask(t)
        except (FileNotFoundError, KeyError, IndexError) as e:
            questions.append({"question": name, "dataset": "", "answer": f"not run ({type(e).__name__})"})
    return pd.DataFrame(claims).reindex(columns=CLAIM_COLUMNS), pd.DataFrame(questions)[QUESTION_COLUMNS]


def seed_coverage(results_dir: str | Path) -> pd.DataFrame:
    """Which seeds each per-seed table under ``results_dir/tables`` rests on: one row per table with
    a ``seed`` column (columns ``table``, ``seeds`` as text ``"0 1 2"``, ``rows``), so a stale
    one-seed table left beside three-seed ones is visible."""
    rows = []
    for path in sorted((Path(results_dir) / "tables").glob("*.csv")):
        df = read_table(path.stem, results_dir)
        if SEED in df.columns:
            rows.append({"table": path.stem, "seeds": " ".join(str(int(x)) for x in sorted(df[SEED].unique())),
                         "rows": len(df)})
    return pd.DataFrame(rows, columns=["table", "seeds", "rows"])


def describe_seed_coverage(coverage: pd.DataFrame, expected: tuple[int, ...]) -> str:
    """Whether every per-seed table holds exactly the ``expected`` seeds, naming those that do not."""
    want = " ".join(map(str, sorted(expected)))
    off = coverage[coverage["seeds"] != want]
    if not len(coverage):
        return "no per-seed tables yet"
    if not len(off):
        return f"all {len(coverage)} per-seed tables hold seeds {want}"
    return (f"{len(off)} of {len(coverage)} per-seed tables do not hold seeds {want}: "
            + "; ".join(f"{r.table} ({r.seeds})" for r in off.itertuples()))


def trend_coverage(claims: pd.DataFrame, results_dir: str | Path) -> pd.DataFrame:
    """:func:`llcpkg.experiments.adequacy.trend_coverage` of ``claims`` against notebook 08's
    per-run claim trend under ``results_dir`` (every negative verdict reads ``no trend run`` if
    notebook 08 has not written it)."""
    try:
        per_run = read_table(adequacy.CLAIM_TREND, results_dir)
    except FileNotFoundError:
        per_run = None
    return adequacy.trend_coverage(claims, per_run)


def tally(claims: pd.DataFrame) -> pd.DataFrame:
    """Rows per bare verdict (``holds (1 seed)`` counts as ``holds``), in the order of :data:`llcpkg.verdicts.KINDS`."""
    kinds = claims["verdict"].map(lambda v: Verdict(v, "").kind)
    return kinds.value_counts().reindex(KINDS).dropna().astype(int).rename_axis("verdict").to_frame("rows")


START, END = "<!-- scoreboard:start -->", "<!-- scoreboard:end -->"


def update_readme(readme: str | Path, claims: pd.DataFrame) -> bool:
    """Replace the block between the scoreboard markers in ``readme`` with ``claims`` as a
    Markdown table (verdict, claim, data set, ours, interval, seeds); False if the markers are missing."""
    path = Path(readme)
    text = path.read_text()
    if START not in text or END not in text:
        return False
    table = claims[["verdict", "claim", "dataset", "ours", "interval", "seeds"]].to_markdown(index=False)
    new = text[: text.index(START) + len(START)] + "\n" + table + "\n" + text[text.index(END):]
    atomic_write(path, lambda p: p.write_text(new))
    return True
