"""Each model kind's ``[model]`` settings: a dataclass of the table's keys, their defaults and their checks.

One module per kind, named as its network's in training/models/ (``settings/esmm.py`` beside ``esmm.py``), and
none imports torch: ``ctr new`` writes a kind's defaults, and ``ctr train`` / ``ctr evaluate`` check a whole
config.toml, before torch's import (~2 s of CPU), which only the networks need. training/models/kinds.py names
each kind's settings; training/models/registry.py builds its network from them.
"""
