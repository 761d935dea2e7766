"""Papermill parameters: read from the parameters cell, type-checked against the defaults, named."""
import nbformat
import pytest

from llcpkg.parameters import ParameterError, check_parameters, custom_parameters, read_parameters, run_name

DEFAULTS = {"profile": "smoke", "seed": 0, "rate": 0.5, "datasets": ["a", "b"], "sizes": (1, 2),
            "bits": None, "flag": False, "odin": {"t": 1.0}}


def test_read_parameters_executes_the_cell_and_keeps_every_target(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('import os\nprofile = os.environ.get("NO_SUCH_VAR", "cpu")\n'
                                     "a, b = 4, 2  # don't: papermill's parser drops this line\nr = 1 / 8")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("z = 1"), cell]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert read_parameters(tmp_path / "n.ipynb") == {"profile": "cpu", "a": 4, "b": 2, "r": 0.125}


@pytest.mark.parametrize("params", [{"seed": 3}, {"rate": 1}, {"rate": 0.1}, {"datasets": ("c",)}, {"sizes": [3]},
                                    {"bits": "anything"}, {"bits": [1, 2]}, {"flag": True}, {"odin": {}}, {}])
def test_values_of_the_default_type_pass(params):
    check_parameters(params, DEFAULTS, "nb.ipynb")


@pytest.mark.parametrize("params, message", [
    ({"bogus_param": 3}, "unknown parameter 'bogus_param' for nb.ipynb; its parameters are: profile, seed, rate"),
    ({"datasets": "mnist"}, "takes a list (default ['a', 'b']), got the string 'mnist'. Pass a Python list "
                            "in quotes, e.g. -p datasets \"['mnist']\""),
    ({"datasets": "[mnist,omniglot]"}, "-p datasets \"['mnist', 'omniglot']\""),
    ({"seed": 2.5}, "'seed' of nb.ipynb takes an int"),
    ({"seed": True}, "'seed' of nb.ipynb takes an int"),
    ({"rate": "fast"}, "takes a number"),
    ({"profile": 3}, "takes a string"),
    ({"flag": 1}, "takes a bool"),
])
def test_unknown_or_mistyped_parameters_are_errors(params, message):
    with pytest.raises(ParameterError) as e:
        check_parameters(params, DEFAULTS, "nb.ipynb")
    assert message in str(e.value)


def test_custom_parameters_and_run_name():
    given = {"profile": "cpu", "seed": 1, "bits": 16, "rate": 0.5, "sizes": [1, 2]}
    custom = custom_parameters(given, DEFAULTS)
    assert custom == {"seed": 1, "bits": 16}  # profile and values equal to the default are not custom
    assert run_name("01_classification", custom) == "01_classification__bits=16__seed=1"
    assert run_name("nb", {"datasets": ["a", "b"]}) == "nb__datasets=a,b"
    lossy = run_name("nb", {"name": "x y"})  # a space is not kept: a hash keeps "x y" apart from "x-y"
    assert lossy.startswith("nb__name=x-y__") and lossy != run_name("nb", {"name": "x-y"})
    assert len(run_name("nb", {"datasets": ["d"] * 100})) <= 120 + 10


def test_a_parameters_cell_that_does_not_run_is_named(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = undefined_name")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(ParameterError, match="parameters cell of bad.ipynb does not run: NameError"):
        read_parameters(tmp_path / "bad.ipynb")
