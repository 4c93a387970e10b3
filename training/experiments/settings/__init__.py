"""Each experiment's settings: a dataclass of its options, their defaults and their checks, and the tables of what
it compares (methods, variants).

One module per experiment, named as the experiment's in training/experiments/ (``settings/cvr.py`` beside
``cvr.py``), and none imports torch: ``ctr experiment ...`` checks its options, as training/models/settings/ lets
``ctr train`` check a config, before torch's import (~2 s of CPU), which only the training needs.
"""
