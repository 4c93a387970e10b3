"""How exact ONNX Runtime's Sigmoid is against 1 / (1 + exp(-x)) as exports now write it
(training/precise_sigmoid.py), on this machine's CPU execution provider.

1. Per probability level p: 4,000 float32 logits within +-0.01 of logit(p), through a one-node Sigmoid
   graph and through the rewritten graph; the largest error relative to the float64 sigmoid of the same
   float32 logit, and how many distinct outputs the 4,000 logits gave.
2. With ``--model``: that model's newest version in ``--repository`` (a scoring model: pctr / pcvr), its
   graph with ONNX Sigmoid nodes (as exported before; the rewrite undone in memory where it was exported
   since) and with 1 / (1 + exp(-x)); ``--rows`` random valid rows scored in one batch and each alone: how
   many rows' scores differ between the two, and by how much (relative).

    PYTHONPATH=. python reports/sigmoid_precision.py [--model esmm -r models] [--out reports/sigmoid_precision.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from common.repository import MODEL_FILE, read_manifest, version_dir, versions
from training.export import random_inputs
from training.precise_sigmoid import ONE, precise_sigmoids

LEVELS = (0.5, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
LOGITS_PER_LEVEL = 4000


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def one_sigmoid() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n"])
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"], name="sigmoid")], "sigmoid", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def levels() -> list[dict]:
    rewritten = one_sigmoid()
    precise_sigmoids(rewritten)
    graphs = {"Sigmoid": session(one_sigmoid()), "1/(1+exp(-x))": session(rewritten)}
    rows = []
    for p in LEVELS:
        centre = np.log(p / (1 - p))
        logits = np.linspace(centre - 0.01, centre + 0.01, LOGITS_PER_LEVEL, dtype=np.float32)
        true = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        row: dict = {"p": p}
        for name, graph in graphs.items():
            (out,) = graph.run(None, {"x": logits})
            row[name] = {
                "max_relative_error": float(np.max(np.abs(out - true) / true)),
                "distinct_outputs": len(np.unique(out)),
            }
        rows.append(row)
    return rows


def plain_sigmoids(model: onnx.ModelProto) -> None:
    """Undo ``precise_sigmoids`` in place: each Neg -> Exp -> Add(1) -> Reciprocal chain back to a Sigmoid."""
    producer = {out: node for node in model.graph.node for out in node.output}
    dropped: set[str] = set()
    for node in list(model.graph.node):
        if node.op_type != "Reciprocal":
            continue
        add = producer.get(node.input[0])
        added_one = add is not None and add.op_type == "Add" and list(add.input)[1:] == [ONE]
        exp = producer.get(add.input[0]) if added_one else None
        neg = producer.get(exp.input[0]) if exp is not None and exp.op_type == "Exp" else None
        if neg is None or neg.op_type != "Neg":
            continue
        dropped |= {add.name, exp.name, neg.name}
        sigmoid = helper.make_node("Sigmoid", [neg.input[0]], [node.output[0]], name=f"{node.name}/Sigmoid")
        model.graph.node.insert(list(model.graph.node).index(node), sigmoid)
        model.graph.node.remove(node)
    for node in [n for n in model.graph.node if n.name in dropped]:
        model.graph.node.remove(node)
    for constant in [c for c in model.graph.initializer if c.name == ONE and dropped]:
        model.graph.initializer.remove(constant)


def batch_position(repository: Path, name: str, n_rows: int) -> dict:
    version = max(versions(repository, name))
    directory = version_dir(repository, name, version)
    manifest = read_manifest(repository, name, version)
    feed = random_inputs(manifest.feature_spec, n_rows, seed=7)
    result: dict = {"model": name, "version": version, "rows": n_rows}
    for label in ("Sigmoid", "1/(1+exp(-x))"):
        graph = onnx.load(str(directory / MODEL_FILE))
        plain_sigmoids(graph)
        if label != "Sigmoid":
            result["sigmoids"] = precise_sigmoids(graph)
        run = session(graph)
        names = [o.name for o in run.get_outputs()]
        together = dict(zip(names, run.run(None, feed), strict=True))
        alone = {n: np.empty_like(together[n]) for n in names}
        for i in range(n_rows):
            one = run.run(None, {k: v[i : i + 1] for k, v in feed.items()})
            for n, value in zip(names, one, strict=True):
                alone[n][i] = value[0]
        result[label] = {
            n: {
                "rows_differing": int(np.sum(alone[n] != together[n])),
                "max_relative_difference": float(np.max(np.abs(alone[n] - together[n]) / together[n])),
            }
            for n in names
            if n in ("pctr", "pcvr")
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a scoring model of the repository (part 2)")
    parser.add_argument("-r", "--repository", type=Path, default=Path("models"))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: dict = {"onnxruntime": ort.__version__, "levels": levels()}
    write = sys.stdout.write
    write("p | Sigmoid max rel. error | distinct of 4000 | 1/(1+exp(-x)) max rel. error | distinct of 4000\n")
    for row in report["levels"]:
        old, new = row["Sigmoid"], row["1/(1+exp(-x))"]
        write(
            f"{row['p']:g} | {old['max_relative_error']:.2e} | {old['distinct_outputs']} | "
            f"{new['max_relative_error']:.2e} | {new['distinct_outputs']}\n"
        )
    if args.model:
        report["batch_position"] = found = batch_position(args.repository, args.model, args.rows)
        write(f"\n{found['model']} v{found['version']}: {found['rows']} rows scored alone vs in one batch\n")
        for label in ("Sigmoid", "1/(1+exp(-x))"):
            for output, figures in found[label].items():
                write(
                    f"{label} {output}: {figures['rows_differing']} rows differ, "
                    f"max rel. difference {figures['max_relative_difference']:.2e}\n"
                )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
