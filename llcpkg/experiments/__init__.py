"""The experiments: one module per notebook, each with a config dataclass filled from the
notebook's parameters (``XExperiment.for_profile(profile, **params)``), one function per
table or figure, ``run(cfg)`` returning every table by file name, and ``verdicts``, the
readings computed from those tables.

The library (``llcpkg.*`` outside this package) never imports from here.
"""
