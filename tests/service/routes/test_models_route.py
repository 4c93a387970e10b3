from __future__ import annotations

import onnxruntime as ort
from fastapi.testclient import TestClient


def test_lists_the_served_models_and_their_provider(client: TestClient) -> None:
    (model,) = client.get("/v1/models").json()["models"]
    assert (model["name"], model["version"], model["kind"], model["ready"]) == ("esmm", 1, "esmm", True)
    assert sorted(model["roles"]) == ["ctcvr", "ctr"]
    assert model["provider"] in ort.get_available_providers()
    assert model["provider"] == "CPUExecutionProvider"  # the test settings turn CUDA off
    assert [t["name"] for t in model["inputs"]] == ["categorical", "numeric"]
    assert {t["name"] for t in model["outputs"]} == {"pctr", "pcvr", "pctcvr"}
    assert "ad_price" in model["features"]
    assert model["required_features"] == ["user_id", "ad_id", "ad_price"]  # hour and ad_quality have defaults
