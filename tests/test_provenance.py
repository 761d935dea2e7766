"""provenance.json: the shared schema, and one notebook's entry replaced without touching the others."""
import json
import subprocess
from datetime import datetime
from pathlib import Path

from llcpkg.provenance import git_state, notebook_entry, record, update_provenance

ROOT = Path(__file__).resolve().parents[1]
ENV_KEYS = {"python": str, "torch": str, "numpy": str, "blas": str, "cpu": str, "threads": int, "device": str}


def check_schema(doc: dict) -> None:
    """Assert the contract read by the report: top-level, environment and per-notebook fields and types."""
    assert set(doc) == {"commit", "dirty", "profile", "created", "environment", "notebooks"}
    assert isinstance(doc["commit"], str) and isinstance(doc["dirty"], bool) and isinstance(doc["profile"], str)
    datetime.fromisoformat(doc["created"])
    assert {k: type(v) for k, v in doc["environment"].items()} == ENV_KEYS
    for entry in doc["notebooks"].values():
        assert set(entry) == {"parameters", "seeds", "wall_s", "finished"}
        assert isinstance(entry["parameters"], dict) and isinstance(entry["wall_s"], float)
        assert entry["seeds"] is None or all(isinstance(s, int) for s in entry["seeds"])
        datetime.fromisoformat(entry["finished"])


def test_record_has_the_schema_and_json_round_trips(tmp_path):
    rec = record(ROOT, "smoke", "cpu", {"01_a": notebook_entry({"seed": 3, "sizes": (1, 2)}, 1.5),
                                        "99_b": notebook_entry({"profile": "smoke"}, 0.25)})
    check_schema(json.loads(json.dumps(rec)))
    assert rec["notebooks"]["01_a"]["seeds"] == [3] and rec["notebooks"]["99_b"]["seeds"] is None
    assert rec["notebooks"]["01_a"]["parameters"]["sizes"] == [1, 2]
    assert "torch:" in rec["environment"]["blas"] and "numpy:" in rec["environment"]["blas"]


def test_update_replaces_one_entry_and_keeps_the_others(tmp_path):
    path = tmp_path / "provenance.json"
    first = update_provenance(path, record(ROOT, "cpu", "cpu", {"a": notebook_entry({"seed": 0}, 1.0),
                                                                 "b": notebook_entry({"seed": 0}, 2.0)}))
    update_provenance(path, record(ROOT, "cpu", "cpu", {"a": notebook_entry({"seed": 7}, 3.0)}))
    doc = json.loads(path.read_text())
    check_schema(doc)
    assert doc["notebooks"]["a"]["seeds"] == [7] and doc["notebooks"]["b"] == first["notebooks"]["b"]
    path.write_text("{not json")  # a damaged file is replaced, not a crash
    assert set(update_provenance(path, record(ROOT, "cpu", "cpu", {"c": notebook_entry({}, 1.0)}))["notebooks"]) == {"c"}


def test_git_state_sees_a_modified_tracked_file_but_not_results(tmp_path):
    def git(*a):
        subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t.csv").write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    commit, dirty = git_state(tmp_path)
    assert len(commit) == 40 and not dirty
    (tmp_path / "results" / "t.csv").write_text("2\n")  # regenerated results do not make the code dirty
    assert git_state(tmp_path) == (commit, False)
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path) == (commit, True)
    assert git_state(tmp_path / "results" / "nowhere") == ("unknown", True)


def test_record_keeps_the_code_state_taken_before_the_run(tmp_path):
    """reproduce takes (commit, dirty) before a notebook runs, since 99_summary rewrites README.md."""
    rec = record(tmp_path / "not-a-checkout", "cpu", "cpu", {"a": notebook_entry({}, 1.0)}, git=("c0ffee", False))
    assert (rec["commit"], rec["dirty"]) == ("c0ffee", False)
    assert (record(tmp_path / "not-a-checkout", "cpu", "cpu", {})["commit"]) == "unknown"
