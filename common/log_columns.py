"""The columns of an impression log that are not features (README "Your own logs", DESIGN.md §1).

A log holds, beside the features, the labels a model learns (``position``, ``click``, ``conversion``),
the request's id and time and the logging policy's ``propensity``. A feature spec naming one of them
trained: a ``click`` feature gave a model that scored AUC 1.0 on its own labels and needed ``click`` in
every request it served. So a spec may not name them (``FeatureSpec.from_toml``), and ``ctr spec infer``
leaves them out.
"""

from __future__ import annotations

LABEL_COLUMNS = ("position", "click", "conversion")  # required in every log the trainer reads: what models learn from

# What a log without a label column means, and what to write, said where the trainer refuses it: a public log
# (Avazu's, Criteo's) has clicks alone and was refused with "add them to the log", no word on what to write
MISSING_LABELS = {
    "position": (
        "every impression at one slot? add position = 1 on every row (the debiased models then learn no "
        "position effect: `ctr new NAME --kind esmm` makes the position-blind ESMM)"
    ),
    "click": "the click label, which every model learns from: add it (0 or 1 on every row)",
    "conversion": (
        "clicks only? add conversion = 0 on every row (pCVR and pCTCVR are then meaningless: `ctr new NAME "
        "--from ctr` makes a model that serves pCTR alone)"
    ),
}
CLICK_ALIASES = ("label",)  # the click column by another log's name (Criteo's)

RESERVED_COLUMNS = {
    "position": "the displayed slot, which position-aware models read in training only",
    "click": "the click label",
    "conversion": "the conversion label",
    "request_id": "the request's id",
    "ts": "the request's time",
    "propensity": "the logging policy's probability of the display (below 1: an explored row, read by bypass_start)",
}
