"""docs/encoding.md is the whole encoding: an implementation written from it alone
(tests/support/documented_encoder.py) scores what the running service scores, bit for bit, on requests with
every case the page names; and its worked examples are the package's hashes.

From the documentation before it, an engineer scoring ``model.onnx`` in another language could reproduce no
score: the per-feature offsets into the shared embedding table, the hash over code points rather than UTF-8
bytes, the trailing NULs dropped and each retrieval tower's own offsets were stated in code only."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from common.features import FeatureSpec, NumericStats
from common.hashing import bucketize, fnv1a64
from tests.support.checkout import ROOT
from tests.support.documented_encoder import DocumentedRetrieval, fnv1a, scores, text_of
from tests.support.retrieval import add_tiny_esam
from tests.support.server import running_server
from tests.support.tiny_model import SPEC, publish_tiny_esmm

PAGE = ROOT / "docs" / "encoding.md"

# the tiny model's features (offsets past 0), with training ranges to clip to (its own stats have none), and
# ad_price taken as a count (transform = "log1p": its stats are of log(1 + price), 0.5 to 31.25)
RANGED_SPEC = FeatureSpec(
    tuple(replace(f, transform="log1p") if f.name == "ad_price" else f for f in SPEC.features),
    {
        "ad_price": NumericStats(mean=2.2, std=0.7, low=math.log1p(0.5), high=math.log1p(31.25)),
        "ad_quality": NumericStats(mean=0.5, std=0.2, low=0.0, high=1.0),
    },
)
CATEGORIES = ["mobile", "Mobile", "café", "cafe\u0301", "日本🙂", "mobile\x00", "a\x00b", "", "__missing__", "NA"]
INTEGERS = [0, 7, -3, 42, 2**53 + 1, 2**63 - 1, 2**64 - 1, 21.0, 2.1e1, -4.0]


def example_rows() -> list[tuple[str, str, int, int, int]]:
    """(value, text hashed, hash, buckets, bucket) of the page's worked examples."""
    rows = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[2].startswith("`0x"):
            value, text, digest, buckets, bucket = cells
            rows.append((value, text, int(digest.strip("`"), 16), int(buckets), int(bucket)))
    return rows


def test_the_page_s_worked_examples_are_the_package_s_hashes() -> None:
    rows = example_rows()
    assert len(rows) == 11
    for shown, _, digest, buckets, bucket in rows:
        value = None if shown.startswith("`null") else eval(shown.strip("`"))  # a JSON value as the page writes it
        text = text_of("__missing__" if value is None else value)
        assert fnv1a(text) == digest == int(fnv1a64([text])[0]), shown
        assert digest % buckets == bucket == int(bucketize([text], buckets)[0]), shown


def requests(seed: int, count: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    values = [*CATEGORIES, *INTEGERS]
    bodies = []
    for _ in range(count):
        context = {"user_id": values[rng.integers(len(values))]}
        if rng.random() < 0.7:
            context["hour"] = None if rng.random() < 0.2 else values[rng.integers(len(values))]
        candidates = []
        for _ in range(int(rng.integers(1, 9))):
            candidate = {
                "ad_id": values[rng.integers(len(values))],
                # inside the range, below it (0: log1p's own edge), past it by far, a whole number, a tiny one
                "ad_price": float(rng.choice([rng.uniform(0, 40), 0.0, 3e38, 12, 1e-300])),
            }
            if rng.random() < 0.6:
                candidate["ad_quality"] = None if rng.random() < 0.3 else float(rng.uniform(-2, 3))
            candidates.append(candidate)
        bodies.append({"context": context, "candidates": candidates})
    return bodies


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root, spec=RANGED_SPEC)
    add_tiny_esam(root)
    return root


def test_an_implementation_of_the_page_scores_what_the_service_scores(repository: Path, tmp_path: Path) -> None:
    retrieval = DocumentedRetrieval(repository / "esam" / "1")
    query = {"user_id": "u5", "user_segment": "s2\x00", "device": "móvil", "query_category": 3.0}
    items = [
        {"ad_id": f"a{i}", "ad_category": ["c1", "日本", 7][i % 3], "advertiser_id": "adv2", "ad_price": 9.5 * i}
        for i in range(12)
    ]
    with (
        running_server(repository, tmp_path / "server.log", ctr_model="esmm") as (url, _),
        httpx.Client(base_url=url, timeout=10.0) as client,
    ):
        for body in requests(seed=0, count=60):
            answer = client.post("/v1/score", json=body)
            assert answer.status_code == 200, (body, answer.text)
            expected = scores(repository / "esmm" / "1", body["context"], body["candidates"])
            assert answer.json()["scores"] == expected, body  # the same rows in one batch: bit for bit
        listed = client.post("/v1/similarity", json={"query": query, "items": items})
        assert listed.status_code == 200, listed.text
        assert listed.json()["scores"] == retrieval.item_scores(query, items)
        top = client.post("/v1/similarity", json={"query": query, "k": 10})
        assert top.status_code == 200, top.text
        assert [(i["id"], i["score"]) for i in top.json()["items"]] == retrieval.top_k(query, 10)


def test_the_page_states_the_esmm_offsets_it_names() -> None:
    """The offsets the page lists for the default `esmm` are its spec's buckets summed (world features)."""
    from training.world.features import feature_spec
    from training.world.world import WorldConfig

    spec = feature_spec(WorldConfig())
    offsets = np.cumsum([0] + [f.buckets for f in spec.categorical])[:-1].tolist()
    listed = re.search(r"`esmm`'s offsets\s+are ([\d, ]+)", PAGE.read_text(encoding="utf-8"))
    assert listed is not None and [int(n) for n in listed.group(1).split(",")] == offsets
