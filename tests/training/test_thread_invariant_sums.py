"""Importing the trainer asks MKL for products whose sums do not depend on the thread count
(training/thread_invariant_sums.py); a variable the user set is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.checkout import ROOT

# a weight gradient's shape in the served esmm (2,048 rows, its first layer), at 1 and 2 threads
PRODUCTS = """
import os, training, torch
torch.manual_seed(0)
grad, x = torch.randn(2048, 360), torch.randn(2048, 129)
products = []
for threads in (1, 2):
    torch.set_num_threads(threads)
    products.append(grad.T @ x)
print(os.environ["MKL_CBWR"], torch.equal(*products))
"""


def run(environment: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PRODUCTS], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_trainer_s_products_are_equal_at_one_and_two_threads():
    environment = {key: value for key, value in os.environ.items() if key != "MKL_CBWR"}
    assert run(environment) == "AUTO,STRICT True"


def test_a_path_the_user_chose_is_kept():
    assert run({**os.environ, "MKL_CBWR": "COMPATIBLE"}).split()[0] == "COMPATIBLE"
