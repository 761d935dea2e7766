"""Results tables (llcpkg.results): the recorded choices the quick look reuses, on hand-made tables."""
import pandas as pd
import pytest


# ----------------------------------------------------------------------------- recorded choices (the quick look)
def _choice() -> pd.DataFrame:
    return pd.DataFrame({"net": ["a", "a", "b", "b"], "lr": [0.1, 1 / 30, 0.1, 1 / 30],
                         "chosen": [True, False, False, True]})


def test_made_for_checks_every_keys_candidates_and_one_chosen_row():
    from llcpkg.results import made_for

    t = _choice()
    assert made_for(t, ["net"], "lr", {("a",): (0.1, 1 / 30), ("b",): (1 / 30, 0.1)})  # order does not matter
    assert not made_for(t, ["net"], "lr", {("a",): (0.1, 0.01)})  # another candidate
    assert not made_for(t, ["net"], "lr", {("a",): (0.1,)})  # fewer candidates
    assert not made_for(t, ["net"], "lr", {("c",): (0.1, 1 / 30)})  # a key it does not hold
    assert not made_for(t.assign(chosen=True), ["net"], "lr", {("a",): (0.1, 1 / 30)})  # two chosen
    with pytest.raises(KeyError, match="chosen"):
        made_for(t.drop(columns="chosen"), ["net"], "lr", {("a",): (0.1, 1 / 30)})


def test_reused_choice_returns_the_fitted_table_or_none_and_says_which(tmp_path, capsys):
    from llcpkg.results import reused_choice, write_table

    assert reused_choice("choice", tmp_path, lambda t: t) is None  # no table: the caller chooses
    write_table(_choice(), "choice", tmp_path)
    got = reused_choice("choice", tmp_path, lambda t: t[t["net"] == "a"])
    assert got["net"].tolist() == ["a", "a"] and "reused from" in capsys.readouterr().out
    assert reused_choice("choice", tmp_path, lambda t: None) is None
    assert "choosing again" in capsys.readouterr().out


def test_only_the_quick_look_reads_a_recorded_choice(tmp_path, monkeypatch):
    from dataclasses import replace

    from llcpkg.profiles import get_profile
    from llcpkg.results import write_table
    from llcpkg.seeds import quick_look_choice

    monkeypatch.setenv("LLC_RESULTS", str(tmp_path))
    write_table(_choice(), "choice", tmp_path)
    cpu = get_profile("cpu")
    assert len(quick_look_choice(cpu, (0,), "choice", lambda t: t)) == 4  # one seed: the quick look
    assert quick_look_choice(cpu, (0, 1, 2), "choice", lambda t: t) is None  # the full run chooses itself
    assert quick_look_choice(replace(cpu, name="smoke"), (0,), "choice", lambda t: t) is None  # CI's smoke run too
