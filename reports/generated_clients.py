"""Generate Python clients from a running service's ``/openapi.json`` with openapi-python-client and
openapi-generator (python), and call every operation through each: each answer parsed as its model, the errors
(401, 404, 400, 422, 503) as ``ErrorResponse``. Prints one line a call and the count of calls as expected.

It runs in a throw-away virtual environment holding the generators (not the project's: it imports nothing of
the project), against a service serving esmm and esam with the admin routes on (it unloads and loads esam,
then esmm; a 503 is asked for meanwhile):

    python -m venv /tmp/gen && /tmp/gen/bin/pip install openapi-python-client==0.29.1 openapi-generator-cli==7.26.0
    CTR_ADMIN_TOKEN=<16+ characters> ctr serve &      # Java 11+ on the PATH for openapi-generator
    /tmp/gen/bin/python reports/generated_clients.py --url http://127.0.0.1:8000 --token <the token> --work /tmp/gen

The request bodies are the document's own examples. reports/generated_clients.ts is the TypeScript call site
(openapi-typescript); its commands are in its header.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS: list[bool] = []


def say(*lines: str) -> None:
    sys.stdout.write("\n".join(lines) + "\n")


def said(label: str, status: int, parsed: Any, want: type, want_status: int = 200) -> Any:
    ok = status == want_status and isinstance(parsed, want)
    RESULTS.append(ok)
    say(f"{'OK ' if ok else 'BAD'} {label}: {status} -> {type(parsed).__name__}")
    return parsed


def examples(document: dict) -> dict[str, dict]:
    """The request body example of each operation that has one, by operation id."""
    found = {}
    for path_item in document["paths"].values():
        for entry in path_item.values():
            body = entry.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in body:
                found[entry["operationId"]] = body["example"]
    return found


def binary_infer_body(example: dict) -> tuple[bytes, int]:
    """The infer example with its tensors as raw little-endian bytes after the JSON header."""
    header: dict = {"inputs": []}
    raw = b""
    for tensor in example["inputs"]:
        values = [v for row in tensor["data"] for v in row]
        packed = struct.pack(f"<{len(values)}{'q' if tensor['datatype'] == 'INT64' else 'f'}", *values)
        header["inputs"].append({k: tensor[k] for k in ("name", "datatype", "shape")})
        header["inputs"][-1]["parameters"] = {"binary_data_size": len(packed)}
        raw += packed
    encoded = json.dumps(header).encode()
    return encoded + raw, len(encoded)


def openapi_python_client(url: str, token: str, bodies: dict[str, dict]) -> None:
    import debiased_ctrcvr_scoring_client.models as m
    from debiased_ctrcvr_scoring_client import AuthenticatedClient, Client
    from debiased_ctrcvr_scoring_client.api.health import live, ready
    from debiased_ctrcvr_scoring_client.api.index import service_index
    from debiased_ctrcvr_scoring_client.api.model_repository import index, load, unload
    from debiased_ctrcvr_scoring_client.api.models import list_models
    from debiased_ctrcvr_scoring_client.api.observability import metrics
    from debiased_ctrcvr_scoring_client.api.open_inference_protocol import (
        all_statistics,
        config,
        infer,
        infer_version,
        model_metadata,
        model_ready,
        model_statistics,
        server_metadata,
        version_config,
        version_metadata,
        version_ready,
        version_statistics,
    )
    from debiased_ctrcvr_scoring_client.api.retrieval import similarity
    from debiased_ctrcvr_scoring_client.api.scoring import score
    from debiased_ctrcvr_scoring_client.types import File

    client = Client(base_url=url, raise_on_unexpected_status=True)
    admin = AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True)

    def check(label: str, call: Callable[[], Any], want: type, status: int = 200) -> Any:
        answer = call()
        return said(label, answer.status_code, answer.parsed, want, status)

    score_body = m.ScoreRequest.from_dict(bodies["score"])
    bad_price = dict(bodies["score"], candidates=[dict(bodies["score"]["candidates"][0], ad_price="cheap")])
    infer_body = m.InferRequest.from_dict(bodies["infer"])
    check("service_index", lambda: service_index.sync_detailed(client=client), m.ServiceIndex)
    check("live", lambda: live.sync_detailed(client=client), m.Health)
    check("ready", lambda: ready.sync_detailed(client=client), m.Health)
    check("list_models", lambda: list_models.sync_detailed(client=client), m.ModelList)
    check("score", lambda: score.sync_detailed(client=client, body=score_body), m.ScoreResponse)
    check(
        "score 422",
        lambda: score.sync_detailed(client=client, body=m.ScoreRequest.from_dict(bad_price)),
        m.ErrorResponse,
        422,
    )
    unserved = m.ScoreRequest.from_dict(dict(bodies["score"], versions={"esmm": 99}))
    check("score 404", lambda: score.sync_detailed(client=client, body=unserved), m.ErrorResponse, 404)
    top_k = m.SimilarityRequest.from_dict(bodies["similarity"])
    check("similarity", lambda: similarity.sync_detailed(client=client, body=top_k), m.SimilarityResponse)
    too_many = m.SimilarityRequest.from_dict(dict(bodies["similarity"], k=5000))
    check("similarity 422", lambda: similarity.sync_detailed(client=client, body=too_many), m.ErrorResponse, 422)
    check("server_metadata", lambda: server_metadata.sync_detailed(client=client), m.ServerMetadata)
    check("model_metadata", lambda: model_metadata.sync_detailed("esmm", client=client), m.ModelMetadata)
    check("model_metadata 404", lambda: model_metadata.sync_detailed("nope", client=client), m.ErrorResponse, 404)
    check("version_metadata", lambda: version_metadata.sync_detailed("esmm", "1", client=client), m.ModelMetadata)
    check(
        "version_metadata 400", lambda: version_metadata.sync_detailed("esmm", "x", client=client), m.ErrorResponse, 400
    )
    check("model_ready", lambda: model_ready.sync_detailed("esmm", client=client), m.ModelReady)
    check("version_ready", lambda: version_ready.sync_detailed("esmm", "1", client=client), m.ModelReady)
    check("config", lambda: config.sync_detailed("esmm", client=client), m.ModelConfig)
    check("version_config", lambda: version_config.sync_detailed("esmm", "1", client=client), m.ModelConfig)
    check("infer", lambda: infer.sync_detailed("esmm", client=client, body=infer_body), m.InferResponse)
    check(
        "infer_version",
        lambda: infer_version.sync_detailed("esmm", "1", client=client, body=infer_body),
        m.InferResponse,
    )
    check("infer 404", lambda: infer.sync_detailed("nope", client=client, body=infer_body), m.ErrorResponse, 404)
    payload, header_length = binary_infer_body(bodies["infer"])
    binary = File(payload=payload)  # type: ignore[arg-type]  # httpx sends bytes as they are
    check(
        "infer, binary request",
        lambda: infer.sync_detailed("esmm", client=client, body=binary, inference_header_content_length=header_length),
        m.InferResponse,
    )
    binary_answer = m.InferRequest.from_dict(dict(bodies["infer"], parameters={"binary_data_output": True}))
    try:  # not counted: the generator reads an answer as its first media type, JSON here
        infer.sync_detailed("esmm", client=client, body=binary_answer)
        say("OK? infer, binary answer: read")
    except ValueError as error:  # UnicodeDecodeError, JSONDecodeError
        say(f"LIMIT infer, binary answer (binary_data_output): {type(error).__name__}, the JSON answer alone is read")
    check("all_statistics", lambda: all_statistics.sync_detailed(client=client), m.Statistics)
    check("model_statistics", lambda: model_statistics.sync_detailed("esmm", client=client), m.Statistics)
    check("version_statistics", lambda: version_statistics.sync_detailed("esmm", "1", client=client), m.Statistics)
    check("metrics", lambda: metrics.sync_detailed(client=client), str)
    wrong = AuthenticatedClient(base_url=url, token="x" * 20, raise_on_unexpected_status=True)
    check("load 401", lambda: load.sync_detailed("esam", client=wrong), m.ErrorResponse, 401)
    check(
        "repository index", lambda: index.sync_detailed(client=admin, body=m.RepositoryIndexRequest(ready=True)), list
    )
    check("unload", lambda: unload.sync_detailed("esam", client=admin), m.UnloadedModel)
    check("load", lambda: load.sync_detailed("esam", client=admin), m.LoadedModel)
    check("unload 404", lambda: unload.sync_detailed("nope", client=admin), m.ErrorResponse, 404)
    check("unload esmm", lambda: unload.sync_detailed("esmm", client=admin), m.UnloadedModel)
    check("ready 503", lambda: ready.sync_detailed(client=client), m.Health, 503)
    check("score 503", lambda: score.sync_detailed(client=client, body=score_body), m.ErrorResponse, 503)
    check("load esmm", lambda: load.sync_detailed("esmm", client=admin), m.LoadedModel)


def openapi_generator(url: str, token: str, bodies: dict[str, dict]) -> None:
    import ctrgen.models as m
    from ctrgen import ApiClient, ApiException, Configuration
    from ctrgen.api import (
        HealthApi,
        IndexApi,
        ModelRepositoryApi,
        ModelsApi,
        ObservabilityApi,
        OpenInferenceProtocolApi,
        RetrievalApi,
        ScoringApi,
    )

    api = ApiClient(Configuration(host=url, access_token=token))

    def check(label: str, call: Callable[[], Any], want: type, status: int = 200) -> Any:
        try:
            return said(label, 200, call(), want, status)
        except ApiException as error:  # the answer's status, its body parsed as the operation declares
            return said(label, error.status, error.data, want, status)
        except ValueError as error:  # pydantic's, where an answer or a body does not parse
            RESULTS.append(False)
            say(f"BAD {label}: {type(error).__name__}: {str(error).splitlines()[0]}")

    scoring, oip, repository = ScoringApi(api), OpenInferenceProtocolApi(api), ModelRepositoryApi(api)
    bad_price = dict(bodies["score"], candidates=[dict(bodies["score"]["candidates"][0], ad_price="cheap")])
    check("service_index", lambda: IndexApi(api).service_index(), m.ServiceIndex)
    check("live", lambda: HealthApi(api).live(), m.Health)
    check("ready", lambda: HealthApi(api).ready(), m.Health)
    check("list_models", lambda: ModelsApi(api).list_models(), m.ModelList)
    check("score", lambda: scoring.score(m.ScoreRequest.from_dict(bodies["score"])), m.ScoreResponse)
    check("score 422", lambda: scoring.score(m.ScoreRequest.from_dict(bad_price)), m.ErrorResponse, 422)
    unserved = dict(bodies["score"], versions={"esmm": 99})
    check("score 404", lambda: scoring.score(m.ScoreRequest.from_dict(unserved)), m.ErrorResponse, 404)
    top_k = bodies["similarity"]
    check(
        "similarity", lambda: RetrievalApi(api).similarity(m.SimilarityRequest.from_dict(top_k)), m.SimilarityResponse
    )
    too_many = dict(top_k, k=5000)
    check(
        "similarity 422",
        lambda: RetrievalApi(api).similarity(m.SimilarityRequest.from_dict(too_many)),
        m.ErrorResponse,
        422,
    )
    check("server_metadata", oip.server_metadata, m.ServerMetadata)
    check("model_metadata", lambda: oip.model_metadata("esmm"), m.ModelMetadata)
    check("model_metadata 404", lambda: oip.model_metadata("nope"), m.ErrorResponse, 404)
    check("version_metadata", lambda: oip.version_metadata("esmm", "1"), m.ModelMetadata)
    check("version_metadata 400", lambda: oip.version_metadata("esmm", "x"), m.ErrorResponse, 400)
    check("model_ready", lambda: oip.model_ready("esmm"), m.ModelReady)
    check("version_ready", lambda: oip.version_ready("esmm", "1"), m.ModelReady)
    check("config", lambda: oip.config("esmm"), m.ModelConfig)
    check("version_config", lambda: oip.version_config("esmm", "1"), m.ModelConfig)
    check("infer", lambda: oip.infer("esmm", m.InferRequest.from_dict(bodies["infer"])), m.InferResponse)
    infer_version = lambda: oip.infer_version("esmm", "1", m.InferRequest.from_dict(bodies["infer"]))  # noqa: E731
    check("infer_version", infer_version, m.InferResponse)
    check("infer 404", lambda: oip.infer("nope", m.InferRequest.from_dict(bodies["infer"])), m.ErrorResponse, 404)
    check("all_statistics", oip.all_statistics, m.Statistics)
    check("model_statistics", lambda: oip.model_statistics("esmm"), m.Statistics)
    check("version_statistics", lambda: oip.version_statistics("esmm", "1"), m.Statistics)
    check("metrics", ObservabilityApi(api).metrics, str)
    ready_only = m.RepositoryIndexRequest(ready=True)
    check("repository index", lambda: repository.index(repository_index_request=ready_only), list)
    check("unload", lambda: repository.unload("esam"), m.UnloadedModel)
    check("load", lambda: repository.load("esam"), m.LoadedModel)
    check("unload 404", lambda: repository.unload("nope"), m.ErrorResponse, 404)
    wrong = ModelRepositoryApi(ApiClient(Configuration(host=url, access_token="x" * 20)))
    check("load 401", lambda: wrong.load("esam"), m.ErrorResponse, 401)


def generate(work: Path, url: str) -> dict:
    document = json.loads(urllib.request.urlopen(f"{url}/openapi.json", timeout=10).read())
    (work / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    tools = Path(sys.executable).parent
    for out in ("opc", "ogen"):
        shutil.rmtree(work / out, ignore_errors=True)
    python_client = ["generate", "--path", "openapi.json", "--output-path", "opc"]
    generator = ["generate", "-i", "openapi.json", "-g", "python", "-o", "ogen", "--package-name", "ctrgen"]
    for command in (
        [str(tools / "openapi-python-client"), *python_client],
        [str(tools / "openapi-generator-cli"), *generator],
    ):
        printed = subprocess.run(command, cwd=work, capture_output=True, text=True, check=True)
        warned = [line for line in (printed.stdout + printed.stderr).splitlines() if "WARN" in line or "ERROR" in line]
        say(f"$ {Path(command[0]).name} {' '.join(command[1:])}", *(f"  {line}" for line in warned))
    sys.path[:0] = [str(work / "opc"), str(work / "ogen")]
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="CTR_ADMIN_TOKEN of the service")
    parser.add_argument("--work", type=Path, required=True, help="where the document and the clients are written")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bodies = examples(generate(args.work, args.url))
    say("== openapi-python-client")
    openapi_python_client(args.url, args.token, bodies)
    say("== openapi-generator (python)")
    openapi_generator(args.url, args.token, bodies)
    say(f"{sum(RESULTS)} of {len(RESULTS)} calls as expected")
    sys.exit(0 if all(RESULTS) else 1)


if __name__ == "__main__":
    main()
