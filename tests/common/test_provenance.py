"""provenance() names the CPU and kernel path beside the packages: with MKL_CBWR=COMPATIBLE the same code and
packages trained an esmm 5-9 % apart in its scores on one machine, and the records of the two could not be told
apart (docs/results.md)."""

import platform
import subprocess
import sys

import pytest

from common.provenance import CHECKOUT, cpu_model, machine, provenance


def test_the_cpu_is_named_from_cpuinfo_and_from_platform_where_it_has_no_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n", encoding="utf-8")
    assert cpu_model(cpuinfo) == "AMD EPYC 9B14"
    arm = tmp_path / "arm_cpuinfo"  # an ARM board's /proc/cpuinfo has no model name line
    arm.write_text("processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\n", encoding="utf-8")
    assert cpu_model(arm) == platform.processor()
    assert cpu_model(tmp_path / "absent") == platform.processor()  # no /proc: macOS, Windows


def test_the_variables_that_choose_a_kernel_path_are_recorded_and_no_others(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CTR_UNRELATED_SETTING", "x")
    environment = machine()["environment"]
    assert environment["MKL_CBWR"] == "COMPATIBLE" and environment["OMP_NUM_THREADS"] == "1"
    assert "CTR_UNRELATED_SETTING" not in environment and "PATH" not in environment


def test_torch_s_kernel_path_and_threads_are_recorded_where_torch_is_imported():
    torch = pytest.importorskip("torch")
    record = machine()
    assert record["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["torch_threads"] == torch.get_num_threads()
    assert provenance() == provenance()  # no date nor counter: equal code on an equal machine, equal records


def test_a_process_without_torch_records_no_torch_entries_and_does_not_import_it():
    """The service calls no torch: recording its kernel path would import it (seconds and memory) for nothing."""
    script = (
        "import sys; from common.provenance import provenance; record = provenance(); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert not {'torch_cpu_capability', 'torch_threads'} & set(record['machine']), record"
    )
    subprocess.run([sys.executable, "-c", script], cwd=CHECKOUT, check=True, timeout=60)
