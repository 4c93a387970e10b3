"""POST /v1/similarity on a repository holding a tiny ESMM (the roles) and a tiny trained ESAM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.support.openapi import resolved
from tests.support.retrieval import add_tiny_esam
from tests.support.tiny_model import publish_tiny_esmm

QUERY = {"user_id": "u3", "user_segment": "s1", "device": "mobile", "user_age": 30.0, "query_category": "c2"}
JSON = {"content-type": "application/json"}
ITEMS = [
    {"ad_id": "a1", "ad_category": "c2", "advertiser_id": "adv3", "ad_price": 12.0, "ad_quality": 0.7},
    {"ad_id": "a7", "ad_category": "c5", "advertiser_id": "adv9", "ad_price": 40.0},
]


@pytest.fixture(scope="module")
def esam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    return add_tiny_esam(root)


@pytest.fixture(scope="module")
def client(esam_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_repository=esam_dir.parents[1], ctr_model="esmm", use_cuda=False, max_top_k=50, max_candidates=20
    )
    with TestClient(create_app(settings)) as client:
        yield client


def items_run(client: TestClient) -> int:
    metrics = client.get("/metrics").text
    series = 'ctr_inference_count_total{model="esam"'
    return int(next(line for line in metrics.splitlines() if line.startswith(series)).split()[-1])


def test_scores_items_and_agrees_with_the_stored_catalog(client: TestClient, esam_dir: Path) -> None:
    before = items_run(client)
    response = client.post("/v1/similarity", json={"query": QUERY, "items": ITEMS})
    assert items_run(client) - before == 1 + len(ITEMS)  # the query's row and the items' (the items went uncounted)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "esam", "version": 1}
    assert len(body["scores"]) == 2 and all(0.0 < s < 1.0 for s in body["scores"])
    top = client.post("/v1/similarity", json={"query": QUERY, "k": 50}).json()["items"]
    ids = np.load(esam_dir / "catalog_ids.npy")
    assert len(top) == 50 and len({item["id"] for item in top}) == 50
    assert {item["id"] for item in top} <= set(ids.tolist())


def test_a_request_holding_a_retired_version_is_503_naming_it(client: TestClient) -> None:
    """A request holding a snapshot whose retrieval version a reload retired (its batcher gone from the snapshot
    it holds) is told which version, in the words /v1/score and V2 infer use ("retiring" named no version)."""
    import asyncio
    import dataclasses

    from service.http.errors import ModelUnavailable
    from service.similarity import pipeline

    settings = client.app.state.settings
    retired = dataclasses.replace(client.app.state.models, batchers={})
    body = orjson.dumps({"query": QUERY, "k": 3})
    with pytest.raises(ModelUnavailable, match="model 'esam' version 1 is no longer served"):
        asyncio.run(pipeline.respond(body, retired, settings, float("inf"), lambda on_gone: None))


def test_top_k_is_sorted_and_matches_the_list_form(client: TestClient) -> None:
    from training.world import World, WorldConfig
    from training.world.retrieval import RetrievalConfig, RetrievalView

    top = client.post("/v1/similarity", json={"query": QUERY, "k": 5}).json()["items"]
    scores = [item["score"] for item in top]
    assert len(top) == 5 and scores == sorted(scores, reverse=True)
    view = RetrievalView(World(WorldConfig(n_users=300, n_ads=200, n_advertisers=40)), RetrievalConfig(n_candidates=20))
    index = [int(item["id"][1:]) for item in top]
    columns = view.item_columns(np.array(index))
    items = [{name: values[i].item() for name, values in columns.items()} for i in range(len(index))]
    listed = client.post("/v1/similarity", json={"query": QUERY, "items": items}).json()["scores"]
    assert listed == pytest.approx(scores, abs=1e-6)


def test_top_k_ranks_items_of_equal_score_in_catalog_order() -> None:
    """argpartition chose among the items tied at the k-th score, and ordered the ties, arbitrarily: rows 0-9
    and 13-24 tied, row 12 best, k = 5 gave [12, 0, 2, 1, 4] (docs/encoding.md: ties keep catalog order)."""
    from types import SimpleNamespace

    from service.models.retrieval_model import RetrievalModel

    embeddings = np.zeros((25, 2), dtype=np.float32)
    embeddings[:, 0] = 1.0
    embeddings[10:13, 0] = [0.5, 0.25, 2.0]  # 10 and 11 below the ties, 12 above them
    catalog = SimpleNamespace(embeddings=embeddings, probability=lambda dots: dots.astype(np.float64))
    for k, expected in [(5, [12, 0, 1, 2, 3]), (1, [12]), (24, [12, *range(10), *range(13, 25), 10]), (40, None)]:
        best, scores = RetrievalModel.top_k(catalog, np.array([1.0, 0.0], dtype=np.float32), k)
        if expected is None:  # past the catalog: all of it, ranked
            expected = [12, *range(10), *range(13, 25), 10, 11]
        assert best.tolist() == expected, k
        assert scores.tolist() == sorted(scores.tolist(), reverse=True)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"query": QUERY, "k": 0}, 422, "k"),
        ({"query": QUERY, "k": 51}, 422, "k"),
        ({"query": QUERY, "k": "5"}, 422, "k"),
        ({"query": QUERY, "k": 3, "items": ITEMS}, 422, "k"),
        ({"query": QUERY}, 422, None),
        ({"query": QUERY, "items": None, "k": None}, 422, None),
        ({"query": QUERY, "items": []}, 422, "items"),
        ({"query": QUERY, "items": ITEMS * 11}, 413, "items"),
        ({"query": {}, "k": 3}, 422, "query"),
        ({"k": 3}, 422, "query"),
        ({"query": {**QUERY, "colour": "red"}, "k": 3}, 422, "query.colour"),
        ({"query": {**QUERY, "user_id": None}, "k": 3}, 422, "query.user_id"),
        ({"query": {**QUERY, "user_age": "old"}, "k": 3}, 422, "query.user_age"),
        ({"query": QUERY, "items": [ITEMS[0], {**ITEMS[1], "shape": 1}]}, 422, "items[1].shape"),
        ({"query": QUERY, "items": [ITEMS[0], {"ad_id": "a2"}]}, 422, "items[1].ad_category"),
        ({"query": QUERY, "items": [ITEMS[0], "a2"]}, 422, "items[1]"),
        ({"query": QUERY, "items": [ITEMS[0], {**ITEMS[1], "ad_price": "x"}]}, 422, "items[1].ad_price"),
        ({"query": QUERY, "items": [ITEMS[0], ITEMS[1], {**ITEMS[1], "ad_price": 1e39}]}, 422, "items[2].ad_price"),
        ({"query": QUERY, "items": [{**ITEMS[0], "ad_id": 2.5}]}, 422, "items[0].ad_id"),
        ({"query": {**QUERY, "user_age": 1e39}, "k": 3}, 422, "query.user_age"),
        ({"query": QUERY, "k": 3, "extra": 1}, 422, "extra"),
    ],
)
def test_bad_input_names_the_field(client: TestClient, body: dict, status: int, field: str) -> None:
    response = client.post("/v1/similarity", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


def test_a_null_items_or_k_is_absent_as_the_schema_says(client: TestClient) -> None:
    """The OpenAPI document types both as "X or null": a generated client sends its unset one as null
    (each was a 422, "k must be an integer" and "give exactly one")."""
    document = client.get("/openapi.json").json()
    schema = document["paths"]["/v1/similarity"]["post"]["requestBody"]
    properties = resolved(document, schema["content"]["application/json"]["schema"])["properties"]
    assert {"type": "null"} in properties["k"]["anyOf"] and {"type": "null"} in properties["items"]["anyOf"]
    top = client.post("/v1/similarity", json={"query": QUERY, "k": 3, "items": None})
    assert top.status_code == 200 and len(top.json()["items"]) == 3, top.text
    listed = client.post("/v1/similarity", json={"query": QUERY, "items": ITEMS, "k": None})
    assert listed.status_code == 200 and len(listed.json()["scores"]) == 2, listed.text


def test_a_k_too_large_for_an_integer_is_told_its_range(client: TestClient) -> None:
    body = b'{"query": {"user_id": "u3"}, "k": ' + b"1" + b"0" * 30 + b"}"  # 10**30: beyond 64 bits
    response = client.post("/v1/similarity", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "k must be an integer in 1..50"


def test_a_whole_number_float_k_is_the_integer_it_is(client: TestClient) -> None:
    """Jackson (a double field) and RapidJSON write ``3.0``: it is k = 3, by ``whole_number``'s rule for a
    categorical feature (it was a 422, "k must be an integer"); a fraction, a boolean or a text is not."""
    body = orjson.dumps({"query": QUERY})[:-1]
    for k in (b"3.0", b"3e0"):
        response = client.post("/v1/similarity", content=body + b', "k": ' + k + b"}", headers=JSON)
        assert response.status_code == 200 and len(response.json()["items"]) == 3, (k, response.text)
    for k in (b"1.5", b"true", b'"3"'):
        response = client.post("/v1/similarity", content=body + b', "k": ' + k + b"}", headers=JSON)
        assert response.json() == {"error": "k must be an integer in 1..50", "field": "k"}, k
    response = client.post("/v1/similarity", content=body + b', "k": -1.0}', headers=JSON)
    assert response.json() == {"error": "k must be in 1..50, not -1", "field": "k"}


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/similarity", content=b'{"query": ', headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_without_a_retrieval_model_similarity_is_503_and_scoring_still_works(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    with TestClient(create_app(Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False))) as client:
        assert client.get("/v2/health/ready").status_code == 200
        response = client.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert response.status_code == 503
        assert "retrieval model" in response.json()["error"]
        score = client.post(
            "/v1/score", json={"context": {"user_id": "u1"}, "candidates": [{"ad_id": "a", "ad_price": 1.0}]}
        )
        assert score.status_code == 200


def test_a_tampered_tower_is_refused(tmp_path: Path, esam_dir: Path) -> None:
    import shutil

    publish_tiny_esmm(tmp_path)
    shutil.copytree(esam_dir.parent, tmp_path / "esam")
    with open(tmp_path / "esam" / "1" / "item_tower.onnx", "ab") as file:
        file.write(b"\0")
    with TestClient(create_app(Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False))) as client:
        response = client.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert response.status_code == 503


def test_a_half_written_model_onnx_of_a_retrieval_version_is_refused(tmp_path: Path, esam_dir: Path) -> None:
    """A retrieval version serves its towers, not its model.onnx, which went unread: a half-written esam export
    was served while /v1/models and ctr_model_info published model.onnx's sha256 as checked, and ``ctr prepare``
    called the same version not whole. Every file model.json lists is checked now."""
    import shutil

    publish_tiny_esmm(tmp_path)
    shutil.copytree(esam_dir.parent, tmp_path / "esam")
    (tmp_path / "esam" / "1" / "model.onnx").write_bytes(b"half-written")
    with TestClient(create_app(Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False))) as client:
        assert client.post("/v1/similarity", json={"query": QUERY, "k": 3}).status_code == 503
        assert "model.onnx sha256" in client.get("/v1/models").text


def test_the_retrieval_model_is_served_like_the_others(tmp_path: Path, esam_dir: Path) -> None:
    """Listed in /v1/models and /v2/models/esam, its calls counted in /metrics, batched (one query-tower
    run for concurrent queries), and reloaded by the admin API when a new version is published."""
    import asyncio
    import shutil

    import httpx

    from service.similarity.schemas import SIMILARITY_EXAMPLE

    publish_tiny_esmm(tmp_path)
    shutil.copytree(esam_dir.parent, tmp_path / "esam")
    (tmp_path / "esam" / "config.toml").write_text("[serving]\nmax_queue_delay_us = 20000\n")
    token = "t" * 16
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False, admin_token=token)
    app = create_app(settings)
    with TestClient(app) as client:
        listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        assert listed["esam"]["ready"] and listed["esam"]["roles"] == ["retrieval"]
        assert listed["esam"]["versions"] == [1] and listed["esam"]["catalog_items"] > 0
        assert client.get("/v2/models/esam").json()["versions"] == ["1"]
        assert client.post("/v1/similarity", json=SIMILARITY_EXAMPLE).status_code == 200  # the docs' example

        async def concurrent() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                replies = await asyncio.gather(
                    *(http.post("/v1/similarity", json={"query": QUERY, "k": 3}) for _ in range(8))
                )
            return [r.status_code for r in replies]

        assert client.portal.call(concurrent) == [200] * 8  # type: ignore[union-attr]
        metrics = client.get("/metrics").text
        assert 'ctr_inference_request_success_total{model="esam",version="1"} 9' in metrics
        executions = next(
            line for line in metrics.splitlines() if line.startswith('ctr_inference_exec_count_total{model="esam"')
        )
        assert int(executions.rsplit(" ", 1)[1]) < 9  # the eight concurrent queries shared tower runs

        shutil.copytree(tmp_path / "esam" / "1", tmp_path / "esam" / "2")
        manifest = (tmp_path / "esam" / "2" / "model.json").read_text().replace('"version": 1', '"version": 2')
        (tmp_path / "esam" / "2" / "model.json").write_text(manifest)
        auth = {"Authorization": f"Bearer {token}"}
        loaded = client.post("/v2/repository/models/esam/load", headers=auth)
        assert loaded.status_code == 200 and loaded.json()["versions"] == [2], loaded.text
        reply = client.post("/v1/similarity", json={"query": QUERY, "k": 3}).json()
        assert reply["model"] == {"name": "esam", "version": 2}


def edited_esam(root: Path, esam_dir: Path, edit: dict[str, object]) -> None:
    """A copy of the tiny ESAM in ``root`` whose model.json constants are changed by ``edit`` (a None value
    removes the constant)."""
    import json
    import shutil

    shutil.copytree(esam_dir.parent, root / "esam")
    path = root / "esam" / "1" / "model.json"
    manifest = json.loads(path.read_text())
    for name, value in edit.items():
        if value is None:
            manifest["constants"].pop(name)
        else:
            manifest["constants"][name] = value
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"similarity_scale": None}, "similarity_scale must be a finite number, not None"),
        ({"similarity_bias": None}, "similarity_bias must be a finite number, not None"),
        ({"similarity_scale": "ten"}, "similarity_scale must be a finite number, not 'ten'"),
        ({"similarity_bias": float("nan")}, "similarity_bias must be a finite number, not nan"),
    ],
    ids=["no-scale", "no-bias", "text", "nan"],
)
def test_a_version_with_bad_similarity_constants_is_refused_and_the_service_starts(
    tmp_path: Path, esam_dir: Path, edit: dict, words: str
) -> None:
    """A string stopped the service's start (TypeError in the model), a NaN answered every score as null
    with 200, a missing constant loaded the version as a scoring model that answered "not loaded"."""
    publish_tiny_esmm(tmp_path)
    edited_esam(tmp_path, esam_dir, edit)
    with TestClient(create_app(Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False))) as client:
        assert client.get("/v2/health/ready").status_code == 200
        response = client.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert response.status_code == 503 and words in response.json()["error"], response.text
        assert 'ctr_model_version_refusals_total{model="esam"} 1' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("dtype", "value"),
    [(np.float32, np.nan), (np.float64, 1e39)],  # float64's 1e39 is finite, float32's inf: NaN dot products
    ids=["nan", "past-float32"],
)
def test_a_catalog_with_a_non_finite_embedding_is_refused(tmp_path: Path, esam_dir: Path, dtype, value) -> None:
    """A float64 catalog was checked before its cast to float32: a 1e39 passed, became inf, and top k over
    NaN scores answered fewer items than asked (none for k = 1)."""
    import json
    import shutil

    from common.repository import sha256_file

    publish_tiny_esmm(tmp_path)
    shutil.copytree(esam_dir.parent, tmp_path / "esam")
    version = tmp_path / "esam" / "1"
    embeddings = np.load(version / "catalog_embeddings.npy").astype(dtype)
    embeddings[7, 2] = value
    np.save(version / "catalog_embeddings.npy", embeddings)
    manifest = json.loads((version / "model.json").read_text())
    manifest["files"]["catalog_embeddings.npy"]["sha256"] = sha256_file(version / "catalog_embeddings.npy")
    (version / "model.json").write_text(json.dumps(manifest))
    with TestClient(create_app(Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False))) as client:
        response = client.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert response.status_code == 503
        assert "NaN or infinity (as float32, as served) in row 7" in response.json()["error"]


def test_a_retrieval_name_that_names_a_scoring_model_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """CTR_RETRIEVAL_MODEL=esmm: /v1/similarity said "not loaded" of a model /v1/models listed as ready in
    the retrieval role."""
    publish_tiny_esmm(tmp_path)
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", retrieval_model="esmm", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert response.status_code == 503
        said = "model 'esmm' version 1 is of kind 'esmm', not a retrieval model"
        assert said in response.json()["error"]
        (entry,) = client.get("/v1/models").json()["models"]
        assert entry["roles"] == ["ctr", "ctcvr"] and entry["ready"]
    assert any(said in record.getMessage() for record in caplog.records if record.levelname == "WARNING")


def test_an_unloaded_model_stays_unloaded_while_polling_until_an_admin_load(tmp_path: Path, esam_dir: Path) -> None:
    import shutil
    import time

    publish_tiny_esmm(tmp_path)
    shutil.copytree(esam_dir.parent, tmp_path / "esam")
    token = "t" * 16
    auth = {"Authorization": f"Bearer {token}"}
    settings = Settings(
        model_repository=tmp_path, ctr_model="esmm", use_cuda=False, admin_token=token, poll_interval_s=0.1
    )
    with TestClient(create_app(settings)) as client:
        assert client.post("/v2/repository/models/esam/unload", headers=auth).status_code == 200
        time.sleep(1.0)  # ten polls: each reloaded it
        response = client.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert response.status_code == 503 and "unloaded" in response.json()["error"]
        assert client.post("/v2/repository/models/esam/load", headers=auth).status_code == 200
        assert client.post("/v1/similarity", json={"query": QUERY, "k": 3}).status_code == 200
        shutil.copytree(tmp_path / "esam" / "1", tmp_path / "esam" / "2")  # and polling works on it again
        manifest = (tmp_path / "esam" / "2" / "model.json").read_text().replace('"version": 1', '"version": 2')
        (tmp_path / "esam" / "2" / "model.json").write_text(manifest)
        deadline = time.monotonic() + 10
        while client.post("/v1/similarity", json={"query": QUERY, "k": 3}).json()["model"]["version"] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_an_unknown_item_feature_names_the_item_tower(client: TestClient) -> None:
    response = client.post("/v1/similarity", json={"query": QUERY, "items": [{**ITEMS[0], "shape": 1}]})
    assert response.status_code == 422 and "item tower" in response.json()["error"], response.text
    assert "items tower" not in response.json()["error"]


def clipped(client: TestClient) -> dict[str, int]:
    """Each numeric feature of the retrieval version -> its ``ctr_feature_values_clipped_total``."""
    prefix = 'ctr_feature_values_clipped_total{model="esam",version="1",feature="'
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return {line[len(prefix) :].split('"')[0]: int(line.rsplit(" ", 1)[1]) for line in lines}


def test_values_outside_the_training_range_are_clipped_and_counted_on_both_towers(client: TestClient) -> None:
    """The query's and the items' encoders count into the retrieval version's series, as scoring's do."""
    before = clipped(client)
    assert {"user_age", "ad_price"} <= set(before)
    far = {"query": {**QUERY, "user_age": 10_950.0}, "items": [{**ITEMS[0], "ad_price": 1e9}, ITEMS[1]]}
    response = client.post("/v1/similarity", json=far)
    assert response.status_code == 200, response.text
    after = clipped(client)
    assert (after["user_age"] - before["user_age"], after["ad_price"] - before["ad_price"]) == (1, 1)


@pytest.mark.parametrize(
    ("items", "headers", "status"),
    [
        ([{**ITEMS[0], "ad_price": 1e39}], {}, 422),  # the items refused once the query was encoded
        ([{**ITEMS[0], "ad_price": 1e9}], {"X-Request-Timeout-Ms": "0.001"}, 504),  # the deadline gone by the queue
    ],
    ids=["items-refused", "deadline"],
)
def test_a_refused_request_counts_no_clipped_value(
    client: TestClient, items: list[dict], headers: dict[str, str], status: int
) -> None:
    """The query's far age was counted when the items' 1e39 refused the request after the query's encoding, and
    both towers' far values when the query's batcher refused it after theirs (its deadline gone by the queue: a
    504; a full queue's 503 is refused at the same place, ``client.enqueue``). Now neither counts."""
    before = clipped(client)
    refused = {"query": {**QUERY, "user_age": 1e9}, "items": items}
    response = client.post("/v1/similarity", json=refused, headers=headers)
    assert response.status_code == status, response.text
    assert clipped(client) == before


def test_unloading_a_retrieval_service_s_model_warns_that_it_is_not_ready(
    tmp_path: Path, esam_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A retrieval service (no roles) unready after an admin unload of its model, said at INFO alone."""
    import logging
    import shutil

    shutil.copytree(esam_dir.parent, tmp_path / "esam")
    token = "t" * 16
    settings = Settings(
        model_repository=tmp_path, ctr_model="none", ctcvr_model="none", use_cuda=False, admin_token=token
    )
    caplog.set_level(logging.INFO, logger="service.models.manager")
    with TestClient(create_app(settings)) as client:
        unload = client.post("/v2/repository/models/esam/unload", headers={"Authorization": f"Bearer {token}"})
        assert unload.status_code == 200 and client.get("/v2/health/ready").status_code == 503
    (said,) = [r for r in caplog.records if "model esam unloaded" in r.getMessage()]
    assert said.levelno == logging.WARNING and said.getMessage() == (
        "model esam unloaded: this retrieval service serves it, so the service is not ready (/v2/health/ready and "
        "/v1/similarity answer 503) until it is loaded again"
    )
