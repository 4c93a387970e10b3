"""The columns of an impression log that are not features (README "Your own logs", DESIGN.md §1).

A log holds, beside the features, the labels a model learns (``position``, ``click``, ``conversion``),
the request's id and time and the logging policy's ``propensity``. A feature spec naming one of them
trained: a ``click`` feature gave a model that scored AUC 1.0 on its own labels and needed ``click`` in
every request it served. So a spec may not name them (``FeatureSpec.from_toml``), and ``ctr spec infer``
leaves them out.
"""

from __future__ import annotations

LABEL_COLUMNS = ("position", "click", "conversion")  # required in every log: what the models learn from

RESERVED_COLUMNS = {
    "position": "the displayed slot, which position-aware models read in training only",
    "click": "the click label",
    "conversion": "the conversion label",
    "request_id": "the request's id",
    "ts": "the request's time",
    "propensity": "the logging policy's probability of the display (IPS weights)",
}
