"""V2 infer's clipped values are counted in ``ctr_feature_values_clipped_total`` as ``/v1/score``'s are, on the
real service over every transport: a numeric value outside the training range moves its feature's series by
one per row, a value inside (or at the edge) moves none, and a refused request counts nothing.

V2 clipped such a value, as /v1/score does, without counting it: an ad server sending V2 tensors in the wrong
unit saw its scores pinned to the edge of the training range and a clipped-values series that stayed at 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from clients.service_process import free_port
from tests.support.encoded_candidates import grpc_inputs, http_inputs
from tests.support.metrics import clipped_while
from tests.support.server import running_server
from tests.support.tiny_model import RANGED, publish_tiny_esmm
from tests.support.v2_bodies import infer_body

# RANGED's standardised training ranges: ad_price [-2.25, 5], ad_quality [-2.5, 2.5]
CATEGORICAL = [1, 55, 80]  # user_id, hour, ad_id: one id inside each feature's range


@dataclass(frozen=True)
class Service:
    url: str  # http://127.0.0.1:PORT
    grpc: str  # 127.0.0.1:PORT


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository, spec=RANGED)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    port = free_port()
    with running_server(repository, log, ctr_model="esmm", grpc_port=str(port)) as (url, _):
        yield Service(url, f"127.0.0.1:{port}")


def infer(service: Service, transport: str, numeric: list[list[float]]) -> None:
    """One V2 infer of rows of ``numeric`` values over ``transport`` (tritonclient's JSON, binary or gRPC)."""
    tensors = np.array([CATEGORICAL] * len(numeric), dtype=np.int64), np.array(numeric, dtype=np.float32)
    if transport == "grpc":
        grpcclient.InferenceServerClient(service.grpc).infer("esmm", grpc_inputs(*tensors), client_timeout=10)
    else:
        client = httpclient.InferenceServerClient(service.url.removeprefix("http://"))
        client.infer("esmm", http_inputs(transport == "binary", *tensors))


@pytest.mark.parametrize("transport", ["json", "binary", "grpc"])
def test_values_outside_the_range_are_counted_per_row_and_feature(service: Service, transport: str) -> None:
    # 1000 and -3 past ad_price's edges, -7 past ad_quality's; 2.5 is ad_quality's edge itself
    outside = [[1000.0, 0.0], [-3.0, 2.5], [0.5, -7.0]]
    assert clipped_while(service.url, lambda: infer(service, transport, outside)) == {"ad_price": 2, "ad_quality": 1}
    inside = [[-2.25, -2.5], [5.0, 2.5], [0.1, -0.2]]  # the edges and values between
    assert clipped_while(service.url, lambda: infer(service, transport, inside)) == {"ad_price": 0, "ad_quality": 0}


@pytest.mark.parametrize(
    ("categorical", "outputs"),
    [
        (CATEGORICAL, [{"name": "nope"}]),  # checked after the tensors
        (CATEGORICAL, [{"name": "pctr", "parameters": {"classification": 2}}]),
        ([1, 55, 500], [{"name": "pctr"}]),  # ad_id past its bucket range
    ],
    ids=["unknown-output", "classification", "categorical-id"],
)
def test_a_refused_request_counts_nothing(service: Service, categorical: list[int], outputs: list[dict]) -> None:
    body = infer_body([categorical], [[1000.0, -7.0]], outputs=outputs)

    def send() -> None:
        response = httpx.post(f"{service.url}/v2/models/esmm/infer", json=body, timeout=10)
        assert response.status_code == 400, response.text

    assert clipped_while(service.url, send) == {"ad_price": 0, "ad_quality": 0}
