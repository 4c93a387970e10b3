"""``ctr auction --url``: the loop closed through a service that is already running (started here as an
operator would, over a repository a first quick run trained), retrained into its repository and
reloaded through its admin API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.service_process import running_service

# A third of --quick's 300 auctions a day (300 impressions to train on): what is asserted of the runs here (the
# versions trained, loaded and scored by, no failed call) does not depend on how many, and each is scored
# over HTTP by the real service and retrained on
DAY = ("--requests-per-day", "100")


def auction(*args: str) -> object:
    return CliRunner().invoke(app, ["auction", "--quick", "--no-progress", *args])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository a first quick run trained (versions 1 and 2 of ctr and esmm), once for every case."""
    work = tmp_path_factory.mktemp("first")
    first = auction("--pipelines", "debiased", *DAY, "--out", str(work / "a.json"), "--work-dir", str(work / "a"))
    assert first.exit_code == 0, first.output
    return work / "a" / "seed0" / "debiased" / "models"


@pytest.mark.timeout(900)  # a quick run: trains 4 small models
@pytest.mark.parametrize(
    ("workers", "roles"),
    # a third case, one worker serving ctr and esmm, walked nothing these two do not: a one-worker service's
    # loads (the second), two models loaded one after the other each day (the first) and the run's own steps (both)
    [
        (2, {"ctr": "ctr", "ctcvr": "esmm"}),  # with two, each day's reload must reach both before it answers
        (1, {"ctr": "esmm", "ctcvr": "esmm"}),  # the served default: one model, trained and loaded once a day
    ],
)
def test_a_running_service_is_retrained_and_reloaded_through_its_admin_api(
    first_run: Path, tmp_path: Path, workers: int, roles: dict[str, str]
) -> None:
    repository = shutil.copytree(first_run, tmp_path / "models")  # versions 1 and 2 of ctr and esmm
    with running_service(repository, roles, tmp_path / "service.log", workers) as service:
        out = tmp_path / "b.json"
        result = auction(
            "--pipelines", "debiased,oracle", *DAY, "--url", service.url, "--repository", str(repository),
            "--admin-token", service.token, "--out", str(out), "--work-dir", str(tmp_path / "b"),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    # the service is left on the last retrained version: said on stdout (it was in no line) and in the report
    said = [line for line in result.output.splitlines() if line.startswith(f"the service at {service.url} now serves")]
    assert said == [f"the service at {service.url} now serves: " + ", ".join(
        f"{role} {name} version 3 (was 2)" for role, name in roles.items()
    )], result.output  # fmt: skip
    report = json.loads(out.read_text())
    days = report["pipelines"]["debiased"]["seeds"][0]["days"]
    assert [d["model_versions"] for d in days] == [{"ctr": [2], "ctcvr": [2]}, {"ctr": [3], "ctcvr": [3]}]
    assert sorted(p.name for p in (repository / "esmm").iterdir() if p.name.isdigit()) == ["1", "2", "3"]
    assert sum(d["errors"] for d in days) == 0
    assert report["config"]["url"] == service.url and "admin_token" not in report["config"]
    assert service.token not in out.read_text()


def test_url_options_that_cannot_close_the_loop_are_refused(tmp_path: Path) -> None:
    half = auction(
        "--url", "http://127.0.0.1:9", "--pipelines", "debiased", "--repository", str(tmp_path),
        "--work-dir", str(tmp_path),
    )  # fmt: skip
    assert half.exit_code != 0 and "--admin-token" in str(half.exception or half.output)
    two = auction("--url", "http://127.0.0.1:9", "--pipelines", "naive,debiased", "--work-dir", str(tmp_path))
    assert two.exit_code != 0 and "exactly one" in str(two.exception or two.output)
    # the default pipelines (naive,debiased,oracle) hold both: the refusal says what to pass, not "got [...]"
    default = auction("--url", "http://127.0.0.1:9", "--work-dir", str(tmp_path))
    assert isinstance(default.exception, ValueError)
    assert str(default.exception) == (
        "--url scores exactly one pipeline through the running service, naive or debiased, and --pipelines "
        "naive,debiased,oracle holds 2: name one, e.g. --pipelines debiased,oracle (the others, oracle, constant and "
        "random, need no service)"
    )
    nobody = auction("--url", "http://127.0.0.1:9", "--pipelines", "debiased", "--work-dir", str(tmp_path))
    assert isinstance(nobody.exception, ValueError)  # a user error: one line and exit 2 from `ctr` (cli/errors.py)
    assert "--url http://127.0.0.1:9: no service answers there" in str(nobody.exception)


def test_a_token_the_service_refuses_is_said_before_the_first_day(tmp_path: Path) -> None:
    """A wrong --admin-token (401), or a service without admin routes (404), was found at the first reload:
    after a day's scoring and a training, the exported version left in the service's repository."""
    from tests.support.server import running_server
    from tests.support.tiny_model import publish_tiny_esmm

    repository = tmp_path / "models"
    publish_tiny_esmm(repository)
    common = ["--pipelines", "debiased", "--repository", str(repository), "--work-dir", str(tmp_path / "w")]
    with running_server(repository, tmp_path / "a.log", ctr_model="esmm", admin_token="r" * 20) as (url, _):
        wrong = auction("--url", url, "--admin-token", "w" * 20, *common)
    assert isinstance(wrong.exception, ValueError)
    assert f"--admin-token: the service at {url} refuses it (401)" in str(wrong.exception)
    with running_server(repository, tmp_path / "b.log", ctr_model="esmm") as (url, _):
        off = auction("--url", url, "--admin-token", "w" * 20, *common)
    assert "the service has no admin routes (start it with CTR_ADMIN_TOKEN)" in str(off.exception)
    assert not (tmp_path / "w").exists() and [p.name for p in (repository / "esmm").iterdir() if p.name.isdigit()] == [
        "1"
    ]


def test_a_role_the_auction_does_not_price_by_is_no_stale_version() -> None:
    """A service filling a third role (common/roles.py: one row) answered its versions too: the day's
    comparison with the versions loaded before it raised KeyError and ended the run."""
    from clients.auction.run import stale_versions

    served = {"ctr": [3], "ctcvr": [3, 4], "shadow": [1]}
    assert stale_versions(served, {"ctr": 3, "ctcvr": 3}) == {"ctcvr": [3, 4]}


def test_served_models_without_the_world_s_features_are_refused_before_the_first_day(tmp_path: Path) -> None:
    """A service of models trained on one's own logs was found at the first day's first request, ~5 s in, exit 1
    naming one feature ('user_id' is not a feature of the served models)."""
    from tests.support.server import running_server
    from tests.support.tiny_model import publish_tiny_esmm

    repository = tmp_path / "models"
    publish_tiny_esmm(repository)  # user_id, hour, ad_id, ad_price, ad_quality: half the world's
    with running_server(repository, tmp_path / "a.log", ctr_model="esmm") as (url, _):
        refused = auction(
            "--url", url, "--pipelines", "debiased",
            "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert isinstance(refused.exception, ValueError)  # exit 2 from `ctr` (cli/errors.py)
    assert str(refused.exception).startswith(
        f"--url {url}: the served models (esmm) do not take the simulated world's features user_segment, device, "
        "user_age, ad_category, advertiser_id, which every auction request carries"
    ), refused.exception
    assert not (tmp_path / "w").exists() and not (tmp_path / "r.json").exists()


def test_served_models_requiring_a_feature_the_world_lacks_are_refused_before_the_first_day(tmp_path: Path) -> None:
    """A model taking every world feature and requiring one more ('site': a platform's own) was found after day 0's
    scoring: every call failed (422, "feature 'site' is required but missing"), the pipeline aborted, exit 1.
    `/v1/models` now says which features each model requires."""
    from common.features import Feature, FeatureSpec, NumericStats
    from tests.support.server import running_server
    from tests.support.tiny_model import publish_tiny_esmm
    from training.world import feature_spec

    world = feature_spec()
    site = Feature("site", "categorical", "context", buckets=10)
    repository = tmp_path / "models"
    stats = {f.name: NumericStats(mean=0.0, std=1.0) for f in world.numeric}
    publish_tiny_esmm(repository, spec=FeatureSpec((*world.features, site), stats))
    with running_server(repository, tmp_path / "a.log", ctr_model="esmm") as (url, _):
        refused = auction(
            "--url", url, "--pipelines", "debiased",
            "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert isinstance(refused.exception, ValueError), refused.output
    assert str(refused.exception) == (
        f"--url {url}: the served models (esmm) require the features site, which the simulated world has none of: "
        "serve models trained on the world's logs (`ctr train` without --logs)"
    )
    assert not (tmp_path / "w").exists() and not (tmp_path / "r.json").exists()


def test_esam_retrieval_with_url_retrieves_with_the_running_service_s_own_retrieval_model(
    first_run: Path, tmp_path: Path
) -> None:
    """`--retrieval esam` was refused with --url: a platform's own service, its ESAM among its models, could not
    hand the auction its candidates. Now the running service's retrieval model retrieves them (none is trained),
    every pipeline of the seed gets the same, and a service without one is refused before day 0."""
    from clients.auction.run import AuctionConfig
    from clients.auction.traffic import draw_day
    from tests.support.auction_retrieval import auctioned, esam_top_k
    from tests.support.retrieval import add_tiny_esam
    from tests.support.server import running_server

    pool, requests = "20", "60"
    trained = auction(  # an ESAM trained on the world's history, as `--retrieval esam` trains it
        "--retrieval", "esam", "--pool", pool, "--pipelines", "oracle", "--days", "1", "--requests-per-day", requests,
        "--out", str(tmp_path / "t.json"), "--work-dir", str(tmp_path / "t"),
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    common = ["--pipelines", "debiased,oracle", "--retrieval", "esam", "--pool", pool, "--requests-per-day", requests]
    with running_server(first_run, tmp_path / "plain.log", ctr_model="esmm", ctcvr_model="esmm") as (url, _):
        refused = auction("--url", url, *common, "--work-dir", str(tmp_path / "r"), "--out", str(tmp_path / "r.json"))
    assert isinstance(refused.exception, ValueError), refused.output  # one line and exit 2 from `ctr`
    assert str(refused.exception).startswith(f"--retrieval esam --url {url}: the service ")  # has no esam to load
    assert "start it with CTR_RETRIEVAL_MODEL naming an ESAM model" in str(refused.exception)
    foreign = shutil.copytree(first_run, tmp_path / "foreign")
    add_tiny_esam(foreign)  # trained on another catalogue's features: its query tower has no 'hour'
    roles = {"ctr_model": "esmm", "ctcvr_model": "esmm", "retrieval_model": "esam"}
    with running_server(foreign, tmp_path / "f.log", **roles) as (url, _):  # found at the first similarity call before
        refused = auction("--url", url, *common, "--work-dir", str(tmp_path / "f"), "--out", str(tmp_path / "f.json"))
    assert isinstance(refused.exception, ValueError), refused.output
    assert str(refused.exception).startswith(
        f"--retrieval esam --url {url}: the towers of the service's retrieval model 'esam' do not take the simulated "
        "world's features hour, which every similarity call carries"
    ), refused.exception
    assert not (tmp_path / "f").exists() and not (tmp_path / "f.json").exists()
    repository = shutil.copytree(first_run, tmp_path / "models")
    shutil.copytree(tmp_path / "t" / "seed0" / "retrieval" / "models" / "esam", repository / "esam")
    assert not (tmp_path / "r.json").exists()
    settings = {"ctr_model": "esmm", "ctcvr_model": "esmm", "retrieval_model": "esam", "request_timeout_ms": "10000"}
    with running_server(repository, tmp_path / "s.log", **settings) as (url, _):
        out = tmp_path / "u.json"
        result = auction("--url", url, *common, "--work-dir", str(tmp_path / "u"), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert (
        report["served_models"]["retrieval"]["name"] == "esam" and report["served_models"]["retrieval"]["version"] == 1
    )
    assert not (tmp_path / "u" / "seed0" / "retrieval").exists()  # nothing trained: the service's own model
    config = AuctionConfig(
        days=2, requests_per_day=int(requests), train_days=1, pipelines=("oracle",), retrieval="esam", pool=20
    )
    world = config.world(0)
    for day in range(2):
        drawn = draw_day(world, 0, day, int(requests), config.train_days, 20)
        retrieved = esam_top_k(repository, 1, world, drawn, config.candidates)  # loaded as the service does
        oracle = auctioned(tmp_path / "u" / "seed0" / "oracle" / "logs", day)
        debiased = auctioned(tmp_path / "u" / "seed0" / "debiased" / "logs", day)
        same = [oracle[r] == set(retrieved[r].tolist()) for r in range(int(requests))]
        assert np.mean(same) >= 0.95, np.mean(same)  # the service's float32 batches may reorder a near-tie
        assert oracle == debiased  # retrieved once, for both
