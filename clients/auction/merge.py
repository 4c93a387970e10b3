"""Joining the reports of an auction run split across machines (``ctr auction --first-seed K --seeds N``, each
part its own seeds) into the report one run over all their seeds writes.

    report, notes = merge_reports([(path, read_part(path)) for path in paths])

Each part's per-seed records are taken as they are (a seed is the same world, advertisers and traffic in any
run); the days' means, the totals with their intervals over seeds and the paired comparisons are computed
again over the union by ``summarise``, as the run computes them. Each part's own figures cover only its seeds:
two parts of one seed each had no interval at all, where the two seeds together have one.

Parts merge only where they are one run's: every setting the same (``config`` but for ``PART_KEYS``, which say
where a part ran and which seeds), the same model configs (``model_configs``) and served models
(``served_models``, under ``--url``), no seed in two parts. A partial (interrupted) part is refused unless
``allow_partial``: then the seeds it finished are taken, as a whole run gives them, and those it did not are
left out and said. Seeds missing between the parts are allowed and said: each seed is an independent draw,
and the intervals are over the seeds there are. Parts that ran other code or packages (``provenance``) are
merged and said: each part's record is kept in ``merged.parts``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from clients.auction.report import MEANS, SLOT_MEANS, SLOT_SUMS, SUMS, finished_seeds, summarise
from clients.auction.run import PipelineRun, rerun_command

# config keys that say where a part ran, which seeds, and what its terminal showed: not the run's settings
PART_KEYS = ("first_seed", "seeds", "work_dir", "model_source", "url", "repository", "progress")
# the records beside ``config`` that say which models a part trained or scored with
MODEL_RECORDS = ("model_configs", "served_models")
# what a part's report must hold to be summarised again: its settings, and every metric a day is summed by
SETTINGS = ("days", "requests_per_day", "slots", "candidates", "pipelines", "train_days", "batch_size", "reserve")
DAY_KEYS = (*SUMS, *MEANS, *SLOT_SUMS, *SLOT_MEANS, "model_versions")
# a day's ratios that are NaN where no ad was shown (clients/auction/day.py), written null: NaN again when read
NAN_WHERE_NO_AD = ("pcvr_over_true", "price_over_bid")


def read_part(path: Path) -> dict[str, Any]:
    """The JSON report at ``path``, checked to be a ``ctr auction`` report whose seeds can be summarised again;
    ValueError naming the file otherwise."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a JSON report ({error})") from None
    except RecursionError:  # arrays nested past Python's stack, no report's shape: it was a traceback
        raise ValueError(f"{path} is not a JSON report (nested deeper than a report is)") from None
    problem = _shape_problem(report)
    if problem:
        raise ValueError(f"{path} is not a `ctr auction` report: {problem}")
    return report


def _shape_problem(report: Any) -> str | None:
    if not isinstance(report, dict) or not isinstance(report.get("config"), dict):
        return "it has no config"
    missing = [key for key in SETTINGS if key not in report["config"]]
    if missing:
        return f"its config has no {', '.join(missing)}"
    if not isinstance(report.get("pipelines"), dict):
        return "it has no pipelines"
    for name, entry in report["pipelines"].items():
        if name not in report["config"]["pipelines"] or not isinstance(entry, dict):
            return f"pipeline {name!r} is not one of its config's"
        for record in entry.get("seeds") or [None]:  # a pipeline without per-seed records has nothing to merge
            if not isinstance(record, dict) or not {"seed", "days", "aborted"} <= set(record):
                return f"pipeline {name!r} has no per-seed records (seeds[i].seed, .days, .aborted)"
            lacking = sorted({key for day in record["days"] for key in DAY_KEYS if key not in day})
            if lacking:
                return (
                    f"seed {record['seed']} of pipeline {name!r} has days without {', '.join(lacking)} (a report of "
                    "older code: run that part again)"
                )
    return None


def merge_reports(
    parts: list[tuple[Path, dict[str, Any]]], allow_partial: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """The report of one run over the parts' seeds, and the lines to say of it (seeds missing, a partial part's
    seeds left out, parts of other code); ValueError naming the file where a part cannot be merged."""
    first_path, first = parts[0]
    taken_from: dict[int, Path] = {}
    runs: dict[str, list[PipelineRun]] = {name: [] for name in first["config"]["pipelines"]}
    records, notes = [], []
    for path, report in parts:
        _check_settings(path, report, first_path, first)
        part_runs = _runs(report)
        seeds = sorted({run.seed for per_seed in part_runs.values() for run in per_seed})
        left_out: list[int] = []
        if "partial" in report:
            if not allow_partial:
                raise ValueError(
                    f"{path} is a partial report (interrupted by {report['partial'].get('interrupted_by')}): its "
                    "last seed did not finish; pass --allow-partial to take the seeds it finished, and merge a run "
                    "of the others (partial.seeds_unfinished)"
                )
            finished = finished_seeds(part_runs, first["config"]["pipelines"], first["config"]["days"])
            left_out = [seed for seed in _seed_range(report) if seed not in finished]
            seeds = [seed for seed in seeds if seed in finished]
            notes.append(_left_out_note(path, left_out, bool(seeds)))
        for seed in seeds:
            if seed in taken_from:
                raise ValueError(
                    f"{path}: seed {seed} is in {taken_from[seed]} too: a seed is the same draw in any run, and "
                    "merged twice it would count as two; merge each seed's report once"
                )
            taken_from[seed] = path
        for name, per_seed in part_runs.items():
            runs[name] += [run for run in per_seed if run.seed in seeds]
        records += _part_records(path, report, seeds, left_out)
    if not taken_from:
        named = ", ".join(str(path) for path, _ in parts)
        raise ValueError(f"{named}: no part holds a finished seed, there is nothing to merge")
    notes += _provenance_notes(records)
    merged = _merged_report(parts, runs, records)
    missing = merged["merged"]["seeds_missing"]
    if missing:
        notes.append(
            f"no part holds seed(s) {_listed(missing)}: the merged report is over seeds {_listed(merged['seeds_run'])}"
            " (each seed is an independent draw; the intervals are over the seeds there are)"
        )
    return merged, notes


def _check_settings(path: Path, report: dict[str, Any], first_path: Path, first: dict[str, Any]) -> None:
    """ValueError naming ``path`` and each setting in which it differs from the first part."""
    config, expected = report["config"], first["config"]
    differ = [
        f"{key} {config.get(key, 'not recorded')!r} (not {expected.get(key, 'not recorded')!r})"
        for key in dict.fromkeys([*expected, *config])
        if key not in PART_KEYS and config.get(key) != expected.get(key)
    ]
    if (config.get("url") is None) != (expected.get("url") is None):  # the addresses themselves may differ
        differ.append("one scored through a running service (--url), the other through services of its own")
    differ += [
        f"{key} differ" if (key in report) == (key in first) else f"{key} recorded in one only"
        for key in MODEL_RECORDS
        if report.get(key) != first.get(key)
    ]
    if differ:
        raise ValueError(
            f"{path}: not the settings of {first_path}: {'; '.join(differ)}. Only parts of one run merge: the "
            "same `ctr auction` options but --first-seed and --seeds (and the same model configs)"
        )


def _runs(report: dict[str, Any]) -> dict[str, list[PipelineRun]]:
    """The part's per-seed records as the run held them (pipeline -> one PipelineRun per seed)."""
    return {
        name: [
            PipelineRun(
                seed=record["seed"],
                days=[_read_back(day) for day in record["days"]],
                aborted=record["aborted"],
                timings=record.get("timings") or {},
            )
            for record in entry["seeds"]
        ]
        for name, entry in report["pipelines"].items()
    }


def _read_back(day: dict[str, Any]) -> dict[str, Any]:
    """A day as the run held it: its ratios of no ad shown NaN again, as ``summarise`` averages them."""
    return day | {key: math.nan for key in NAN_WHERE_NO_AD if day[key] is None}


def _seed_range(report: dict[str, Any]) -> range:
    config = report["config"]
    first_seed = config.get("first_seed", 0)  # a report of before --first-seed: seeds 0..seeds-1
    return range(first_seed, first_seed + config.get("seeds", 0))


def _left_out_note(path: Path, left_out: list[int], took_any: bool) -> str:
    """What was taken of a partial part: its unfinished seeds (those after the one it stopped in included) are a
    contiguous range, which one ``ctr auction`` runs again."""
    taken = "took the seeds it finished" if took_any else "it finished no seed: took nothing of it"
    if not left_out:
        return f"{path} is partial: {taken}"
    return (
        f"{path} is partial: {taken}, left out seeds {_listed(left_out)} (unfinished), which "
        f"{rerun_command(left_out)} runs again"
    )


def _part_records(path: Path, report: dict[str, Any], seeds: list[int], left_out: list[int]) -> list[dict[str, Any]]:
    """What ``merged.parts`` keeps of a part: where and how it ran, which seeds were taken from it. A merged
    report's own parts, where it is merged again."""
    if "merged" in report:
        return report["merged"]["parts"]
    record = {
        "file": str(path),
        "seeds": seeds,
        "config": {key: report["config"].get(key) for key in PART_KEYS},
        **{key: report[key] for key in ("command", "provenance", "machine", "seconds") if key in report},
    }
    if "partial" in report:
        record |= {"partial": report["partial"], "seeds_left_out": left_out}
    if "served_models_at_end" in report:
        record["served_models_at_end"] = report["served_models_at_end"]
    return [record]


def _provenance_notes(records: list[dict[str, Any]]) -> list[str]:
    """A line per part whose code or packages differ from the first part's."""
    first = records[0]
    code = {key: (first.get("provenance") or {}).get(key) for key in ("git", "packages")}
    return [
        f"{record['file']} ran other code or packages than {first['file']} (its provenance.git or .packages): its "
        "seeds' figures may differ by more than their draws; merged.parts keeps each part's provenance"
        for record in records[1:]
        if {key: (record.get("provenance") or {}).get(key) for key in code} != code
    ]


def _merged_report(
    parts: list[tuple[Path, dict[str, Any]]], runs: dict[str, list[PipelineRun]], records: list[dict[str, Any]]
) -> dict[str, Any]:
    first = parts[0][1]
    runs = {name: sorted(per_seed, key=lambda run: run.seed) for name, per_seed in runs.items()}
    seeds = sorted({run.seed for per_seed in runs.values() for run in per_seed})
    config = dict(first["config"])
    for key in PART_KEYS:  # where every part ran alike, as it ran; otherwise each part's is in merged.parts
        values = [report["config"].get(key) for _, report in parts]
        config[key] = values[0] if all(value == values[0] for value in values) else None
    config |= {"first_seed": seeds[0], "seeds": len(seeds)}
    seconds = [report.get("seconds", {}) for _, report in parts]
    report = summarise(runs, config, sum(s.get("total", 0.0) for s in seconds))
    report["seconds"] |= {
        key: sum(s[key] for s in seconds)
        for key in ("cpu_client_and_training", "cpu_services")
        if all(key in s for s in seconds)
    }
    report |= {key: first[key] for key in MODEL_RECORDS if key in first}
    report["merged"] = {
        "parts": records,
        "seeds_missing": [seed for seed in range(seeds[0], seeds[-1] + 1) if seed not in seeds],
    }
    return report


def _listed(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))
