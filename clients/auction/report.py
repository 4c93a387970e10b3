"""The auction report: per day and pipeline, per seed, totals with 95% confidence intervals over
seeds (null from one seed), and paired differences between pipelines (the same traffic and outcome
draws per seed).

    {"config": {...},
     "pipelines": {"<name>": {"days": [{"day", "revenue", "welfare", ...}],   # means over seeds
                              "total": {...sums/means..., "welfare_ci95": [lo, hi], ...},
                              "seeds": [{"seed", "days": [...], "total": {...}, "aborted"}]}},
     "comparisons": {"debiased_minus_naive": {"welfare": mean, "welfare_ci95": [lo, hi], ...}},
     "seconds": {"total", "scoring", "retraining", "export", "reload"}}
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from clients.auction.explore import GSP_SLOT_MEANS, GSP_SUMS, SLICE_SUMS, explore_lines
from clients.auction.retrieval import RETRIEVAL_FIGURES, retrieval_line
from clients.auction.student_t import critical_value

SUMS = ("revenue", "welfare", "advertiser_surplus", "clicks", "conversions", "impressions", "expected_welfare",
        "regret", "errors", "resent", "retried", "requests")  # fmt: skip
SLOT_SUMS = ("revenue_by_slot", "welfare_by_slot")
MEANS = ("pcvr_over_true", "price_over_bid", "p50_ms", "p99_ms")
SLOT_MEANS = ("ctr_by_slot", "pctr_over_true_by_slot", "slot_pctr_over_true_by_slot", "ocpa_share_by_slot",
              "ocpa_share_oracle_by_slot")  # fmt: skip
PER_SLOT = (*SLOT_SUMS, *SLOT_MEANS, *GSP_SLOT_MEANS)  # a list per day, one number per slot
COMPARED = ("welfare", "revenue", "advertiser_surplus", "conversions", "clicks", "regret")


def ci95(values: list[float]) -> list[float] | None:
    """Two-sided 95% interval of the mean over seeds (Student t); None from fewer than two values, whose
    spread is unknown (it gave [v, v], printed as "± 0": no uncertainty, where there is no estimate)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    mean = float(x.mean())
    half = critical_value(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return [mean - half, mean + half]


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``np.nanmean``, NaN where every value is (a slot no ad was shown in: a pipeline whose service answered
    no call), without numpy's "Mean of empty slice" RuntimeWarning, which ``ctr auction`` printed then."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _mean_lists(lists: list[list[float] | None]) -> list[float] | None:
    """Per slot, the mean of the lists given; None where none is (a pipeline with no slot ratios has no slot
    calibration: ``slot_pctr_over_true_by_slot`` None)."""
    present = [values for values in lists if values is not None]
    if not present:
        return None
    return _nanmean(np.asarray(present, dtype=np.float64), axis=0).tolist()


def seed_total(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums of counts and money over the days, means of ratios and latencies."""
    total: dict[str, Any] = {key: float(sum(d[key] for d in days)) for key in SUMS}
    total |= {key: np.sum([d[key] for d in days], axis=0).tolist() for key in SLOT_SUMS}
    for key in MEANS:  # latencies are None for the oracle, which makes no calls
        values = [d[key] for d in days if d[key] is not None and not math.isnan(d[key])]
        total[key] = float(np.mean(values)) if values else None
    total |= {key: _mean_lists([d[key] for d in days]) for key in SLOT_MEANS}
    total |= {key: float(np.mean([d[key] for d in days])) for key in RETRIEVAL_FIGURES if key in days[0]}
    total |= {key: float(sum(d[key] for d in days)) for key in (*SLICE_SUMS, *GSP_SUMS) if key in days[0]}
    total |= {key: _mean_lists([d[key] for d in days]) for key in GSP_SLOT_MEANS if key in days[0]}
    best = total["expected_welfare"] + total["regret"]
    total["regret_share"] = total["regret"] / best if best > 0 else 0.0
    total["days"] = len(days)
    return total


def _across(totals: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds, with a 95% interval for every number and every per-slot number."""
    out: dict[str, Any] = {"seeds": len(totals)}
    for key, value in totals[0].items():
        if key in PER_SLOT:
            present = [t[key] for t in totals if t[key] is not None]
            if not present:  # no seed has the figure (slot calibration without slot ratios)
                out[key] = out[f"{key}_ci95"] = None
                continue
            columns = np.asarray(present, dtype=np.float64).T  # (S, seeds)
            out[key] = [float(_nanmean(c)) for c in columns]
            out[f"{key}_ci95"] = [ci95(c[~np.isnan(c)].tolist()) for c in columns]
        elif isinstance(value, int | float):
            out[key] = float(np.mean([t[key] for t in totals]))
            out[f"{key}_ci95"] = ci95([t[key] for t in totals])
    return out


def _days_across(runs: list[Any]) -> list[dict[str, Any]]:
    n_days = min(len(r.days) for r in runs)
    days = []
    for i in range(n_days):
        entries = [r.days[i] for r in runs]
        day: dict[str, Any] = {"day": i}
        for key, value in entries[0].items():
            if key == "day":
                continue
            if key in PER_SLOT:
                day[key] = _mean_lists([e[key] for e in entries])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                day[key] = float(np.mean([e[key] for e in entries]))
        day["model_versions"] = [e["model_versions"] for e in entries]  # one entry per seed
        days.append(day)
    return days


def summarise(runs: dict[str, list[Any]], config: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``runs``: pipeline -> one PipelineRun per seed. A run stopped by a signal holds seeds, and pipelines, that
    no day of ended: they are left out (no day has no figures)."""
    runs = {name: [r for r in per_seed if r.days] for name, per_seed in runs.items()}
    runs = {name: per_seed for name, per_seed in runs.items() if per_seed}
    pipelines: dict[str, Any] = {}
    totals: dict[str, list[dict[str, Any]]] = {}
    for name, per_seed in runs.items():
        totals[name] = [seed_total(r.days) for r in per_seed]
        pipelines[name] = {
            "days": _days_across(per_seed),
            "total": _across(totals[name]),
            "seeds": [
                {"seed": r.seed, "days": r.days, "total": t, "aborted": r.aborted, "timings": r.timings}
                for r, t in zip(per_seed, totals[name], strict=True)
            ],
            "aborted": [r.aborted for r in per_seed if r.aborted],
        }
    timing_keys = ("scoring", "retraining", "export", "reload")
    split = {k: float(sum(r.timings.get(k, 0.0) for rs in runs.values() for r in rs)) for k in timing_keys}
    return {
        "config": config,
        "seeds_run": sorted({r.seed for rs in runs.values() for r in rs}),
        "pipelines": pipelines,
        "comparisons": _comparisons(runs),
        "seconds": {"total": seconds, **split},
    }


def finished_seeds(runs: dict[str, list[Any]], pipelines: list[str], days: int) -> list[int]:
    """The seeds every one of ``pipelines`` ran to the end in ``runs`` (pipeline -> one PipelineRun per seed): all
    ``days`` days, or stopped early by a failure of its own (``aborted``), as any run gives them. A signal leaves
    the seed it stopped unfinished, and those after it."""
    ended = {name: {r.seed for r in per_seed if len(r.days) == days or r.aborted} for name, per_seed in runs.items()}
    seeds = {r.seed for per_seed in runs.values() for r in per_seed}
    return sorted(seed for seed in seeds if all(seed in ended.get(name, ()) for name in pipelines))


def _comparisons(runs: dict[str, list[Any]]) -> dict[str, Any]:
    """Paired differences per seed (same traffic, same outcome draws), mean and 95% interval, over the days both
    pipelines of a seed ran (a pipeline stopped early, by a refused reload or a signal, was compared on its few
    days against the other's full run) and neither had a failed scoring call on. A failed call is an auction
    without ads on one side only: the pair compared a model with an outage. The day is the unit left out, not
    the failed auctions alone: a day's metrics are sums over its auctions, none kept one by one.

    ``seeds``: the seeds compared (those with a day left to compare); ``paired_seeds``: the seeds both pipelines
    ran, by which ``days`` (the days both ran) and ``failed_days_left_out`` (those of them left out) are listed:
    a seed whose every day failed is in these, not in ``seeds``. ``None`` figures where no day is left."""
    pairs = [("debiased", "naive"), ("debiased", "oracle"), ("naive", "oracle"), ("naive", "constant"),
             ("debiased", "constant"), ("constant", "oracle"), ("naive", "random"), ("debiased", "random"),
             ("constant", "random"), ("random", "oracle")]  # fmt: skip
    out = {}
    for a, b in pairs:
        if a not in runs or b not in runs:
            continue
        by_seed = {name: {r.seed: r.days for r in runs[name]} for name in (a, b)}
        seeds = sorted(by_seed[a].keys() & by_seed[b].keys())
        common = {s: min(len(by_seed[a][s]), len(by_seed[b][s])) for s in seeds}
        failed = {
            s: [d for d in range(common[s]) if by_seed[a][s][d]["errors"] or by_seed[b][s][d]["errors"]] for s in seeds
        }
        kept = {s: [d for d in range(common[s]) if d not in failed[s]] for s in seeds}
        compared = [s for s in seeds if kept[s]]
        totals = {name: [seed_total([by_seed[name][s][d] for d in kept[s]]) for s in compared] for name in (a, b)}
        entry: dict[str, Any] = {
            "seeds": compared,
            "paired_seeds": seeds,  # what ``days`` and ``failed_days_left_out`` are listed by
            "days": [common[s] for s in seeds],
            "failed_days_left_out": [failed[s] for s in seeds],
        }
        for key in COMPARED:
            diffs = [t_a[key] - t_b[key] for t_a, t_b in zip(totals[a], totals[b], strict=True)]
            entry[key] = float(np.mean(diffs)) if diffs else None
            entry[f"{key}_ci95"] = ci95(diffs)
        for key in SLOT_SUMS:
            diffs = [np.subtract(t_a[key], t_b[key]) for t_a, t_b in zip(totals[a], totals[b], strict=True)]
            entry[key] = np.mean(diffs, axis=0).tolist() if diffs else None
        out[f"{a}_minus_{b}"] = entry
    return out


def _fmt(value: float | None, interval: list[float] | None, digits: int = 0) -> str:
    if value is None:  # a mean over no shown ad: a pipeline whose service answered no call
        return "n/a"
    if interval is None:
        return f"{value:,.{digits}f} (one seed)"
    half = (interval[1] - interval[0]) / 2
    return f"{value:,.{digits}f} ± {half:,.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """A Markdown table per pipeline total: mean ± half-width of the 95% interval over seeds."""
    header = ("| pipeline | welfare | revenue | surplus | conversions | clicks | pCTR/true by slot | pCVR/true "
              "| regret share | errors |")  # fmt: skip
    lines = [header, "|" + "---|" * 10]
    for name, entry in report["pipelines"].items():
        t = entry["total"]
        slots = ", ".join(
            _fmt(v, interval, 2).replace(" ± ", "±").replace(" (one seed)", "")
            for v, interval in zip(t["pctr_over_true_by_slot"], t["pctr_over_true_by_slot_ci95"], strict=True)
        )
        lines.append(
            f"| {name} | {_fmt(t['welfare'], t['welfare_ci95'])} | {_fmt(t['revenue'], t['revenue_ci95'])} "
            f"| {_fmt(t['advertiser_surplus'], t['advertiser_surplus_ci95'])} "
            f"| {_fmt(t['conversions'], t['conversions_ci95'])} | {_fmt(t['clicks'], t['clicks_ci95'])} | {slots} "
            f"| {_fmt(t.get('pcvr_over_true'), t.get('pcvr_over_true_ci95'), 2)} "
            f"| {_fmt(t['regret_share'], t['regret_share_ci95'], 3)} | {t['errors']:.0f} |"
        )
    retrieved = retrieval_line(report)
    if retrieved:
        lines.append(f"\n{retrieved}")
    lines += explore_lines(report)
    days = report.get("config", {}).get("days")
    for pair, entry in report.get("comparisons", {}).items():
        compared = entry.get("days", [])
        fewer = (
            f" (over days {compared} per seed: a pipeline stopped early)" if any(d != days for d in compared) else ""
        )
        left_out = sum(len(failed) for failed in entry.get("failed_days_left_out", []))
        if left_out:  # docs/auction.md, "Failed calls and exit codes"
            fewer += f" (without the {left_out} seed-day(s) with failed scoring calls: failed_days_left_out)"
        lines.append(
            f"\n{pair}: welfare {_fmt(entry['welfare'], entry['welfare_ci95'])}, "
            f"revenue {_fmt(entry['revenue'], entry['revenue_ci95'])}, "
            f"conversions {_fmt(entry['conversions'], entry['conversions_ci95'])}{fewer}"
        )
    return "\n".join(lines)


def scoring_warnings(report: dict[str, Any]) -> list[str]:
    """One line per pipeline whose scoring calls failed: its own figures count each failed request as an auction
    without ads (a service killed mid-run printed ``debiased_minus_oracle: welfare -9,421`` and exited 0), so
    they are not the models' (``ctr auction`` exits 1 on any); its paired comparisons leave out the seed-days
    with failures (``failed_days_left_out``), and the line says how many."""
    lines = []
    for name, entry in report["pipelines"].items():
        days = [d for seed in entry["seeds"] for d in seed["days"]]
        errors, requests = sum(d["errors"] for d in days), sum(d["requests"] for d in days)
        if not errors:
            continue
        kinds: dict[str, int] = {}
        for d in days:
            for kind, count in d.get("error_kinds", {}).items():
                kinds[kind] = kinds.get(kind, 0) + count
        commonest = max(kinds, key=kinds.get) if kinds else "unknown"
        failed_days = sum(1 for d in days if d["errors"])
        lines.append(
            f"WARNING: pipeline {name}: {errors:,} of {requests:,} scoring calls failed ({errors / requests:.1%}), "
            f"most often {commonest!r} ({kinds.get(commonest, 0):,}); its totals count each as an auction without "
            f"ads, its paired comparisons leave out the {failed_days} seed-day(s) with failures: see the service's "
            "log and run again"
        )
    return lines


def stale_warnings(report: dict[str, Any]) -> list[str]:
    """One line per day scored by other versions than the ones loaded before it (a reload by someone else
    mid-run): recorded in ``stale_versions`` but never shown, so the day's figures mixed models unsaid."""
    return [
        f"WARNING: pipeline {name}, seed {seed['seed']}, day {d['day']}: scored by versions {d['stale_versions']}, "
        "not only the ones loaded before the day (a reload by someone else?): the day's figures mix models"
        for name, entry in report["pipelines"].items()
        for seed in entry["seeds"]
        for d in seed["days"]
        if d.get("stale_versions")
    ]
