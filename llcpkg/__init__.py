"""llcpkg: learnt low-dimensional binary codes (LLC, Kusupati et al., NeurIPS 2021) and
homologically functional hashing (HFH), as a small reproducible artifact.

Modules: ``data`` (data sets), ``models`` (backbones, heads, straight-through sign),
``train`` (one loop, cached stages), ``decode`` (MIPS, MHD, ED, Hamming-ball decoders),
``experiments`` (the standard pipeline and evaluators), ``profiles`` (run sizes),
``results`` (atomic tables and figures), ``reproduce`` (papermill runner), ``report`` (the
results as an offline HTML site), ``stats`` (intervals over seeds), ``verdicts`` (the verdict
vocabulary and rules), ``runtimes`` (stage wall times for ``run_times.csv``).
"""
__version__ = "0.1.0"
