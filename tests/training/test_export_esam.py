"""Multi-graph export: ESAM's towers as their own parity-checked graphs, plus the catalog embeddings."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from common.encoder import FeatureEncoder, fit_statistics
from common.repository import CATALOG_EMBEDDINGS, CATALOG_IDS, MANIFEST_FILE, Manifest, read_manifest, sha256_file
from training.export import PARITY_TOLERANCE, export_checkpoint, random_inputs
from training.fitting.checkpoint import Checkpoint
from training.models.esam import ESAM
from training.models.settings.esam import ESAMConfig
from training.world import World, WorldConfig
from training.world.retrieval import RetrievalView

PARAMS = {"feature_dim": 4, "hidden": [16], "embedding_dim": 8}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    view = RetrievalView(World(WorldConfig(n_users=200, n_ads=120, n_advertisers=40)))
    queries = view.queries(50, seed=0)
    spec = fit_statistics(view.feature_spec(), {**view.query_columns(queries), **view.item_columns()})
    torch.manual_seed(0)
    model = ESAM(spec, ESAMConfig(**PARAMS))
    with torch.no_grad():
        model.bias.fill_(-1.5)
    checkpoint = Checkpoint(
        name="esam",
        kind="esam",
        model_params=PARAMS,
        spec=spec,
        state_dict=model.state_dict(),
        catalog={name: column.tolist() for name, column in view.item_columns().items()},
        catalog_id="ad_id",
    )
    root = tmp_path_factory.mktemp("models")
    assert export_checkpoint(checkpoint, root) == 1
    return root / "esam" / "1", checkpoint, view


def test_every_file_is_listed_with_its_sha256(exported) -> None:
    directory, _, _ = exported
    manifest = read_manifest(directory.parents[1], "esam", 1)
    assert set(manifest.files) == {"query_tower.onnx", "item_tower.onnx", CATALOG_EMBEDDINGS, CATALOG_IDS}
    for name, info in manifest.files.items():
        assert info.sha256 == sha256_file(directory / name)
    assert manifest.files["query_tower.onnx"].side == "context"
    assert [o.name for o in manifest.files["item_tower.onnx"].outputs] == ["item_embedding"]
    assert manifest.constants["similarity_scale"] == 10.0
    assert manifest.constants["similarity_bias"] == pytest.approx(-1.5)
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_towers_match_torch_on_fresh_inputs(exported) -> None:
    directory, checkpoint, _ = exported
    model = checkpoint.build()
    for file_name, (graph, side) in model.export_graphs().items():
        session = ort.InferenceSession(str(directory / file_name), providers=["CPUExecutionProvider"])
        inputs = random_inputs(checkpoint.spec.for_side(side), 300, seed=21)
        (onnx_out,) = session.run(None, inputs)
        with torch.no_grad():
            (torch_out,) = graph(torch.from_numpy(inputs["categorical"]), torch.from_numpy(inputs["numeric"])).values()
        assert onnx_out.shape == (300, 8)
        assert np.max(np.abs(onnx_out - torch_out.numpy())) <= PARITY_TOLERANCE


def test_catalog_embeddings_are_the_item_tower_of_the_catalog(exported) -> None:
    directory, checkpoint, view = exported
    ids = np.load(directory / CATALOG_IDS)
    embeddings = np.load(directory / CATALOG_EMBEDDINGS)
    assert ids.tolist() == [f"a{i}" for i in range(view.n_items)]
    encoded = FeatureEncoder(checkpoint.spec.for_side("candidate")).encode(view.item_columns(), view.n_items)
    with torch.no_grad():
        expected = checkpoint.build().item_tower(
            torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric)
        )
    np.testing.assert_allclose(embeddings, expected.numpy(), atol=PARITY_TOLERANCE)
    assert np.linalg.norm(embeddings, axis=1) == pytest.approx(1.0, abs=1e-5)


def test_manifests_without_files_still_load(exported) -> None:
    directory, _, _ = exported
    data = json.loads((directory / MANIFEST_FILE).read_text())
    del data["files"]
    assert Manifest.from_json(json.dumps(data)).files == {}
