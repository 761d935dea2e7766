"""The experiments: one module per notebook, each with a config dataclass filled from the
notebook's parameters (``XExperiment.for_profile(profile, **params)``), one function per
table or figure, ``run(cfg)`` returning every table by file name, its table and column
names as constants, the ``describe_*`` readings, and ``verdicts(tables)``: the claims rows
of the tables it produces, which :mod:`.summary` (notebook 99) collects into the scoreboard.

The library (``llcpkg.*`` outside this package) never imports from here.
"""
