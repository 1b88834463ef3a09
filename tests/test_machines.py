"""The machines of stored records: named from env.json, counted, and read per run of a study."""

from pathlib import Path

from mpm.analysis.machines import machine, machines_table, run_machines
from mpm.config import profile
from mpm.runs.store import RunRecord, write_record
from mpm.runs.studies import runs_table, study_configs

INTEL = {"device": "cpu", "numerics": {"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512",
                                       "threads": 1}}
AMD = {"device": "cpu", "numerics": {"cpu_model": "AMD EPYC", "cpu_capability": "AVX512", "threads": 1}}
CUDA = {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3"}


def record(env: dict) -> RunRecord:
    return RunRecord(path=Path("."), config=profile("smoke"), metrics={}, history=[], env=env)


def test_a_machine_is_its_cpu_and_capability_or_its_gpu():
    assert machine(INTEL) == "Intel(R) Xeon(R) Processor (AVX512)"
    assert machine(CUDA) == "NVIDIA H100 80GB HBM3"
    assert machine({"device": "cpu"}) == "unnamed CPU (capability not recorded)"


def test_machines_table_counts_records_most_first():
    two_threads = {**AMD, "numerics": {**AMD["numerics"], "threads": 2}}
    table = machines_table([record(INTEL), record(AMD), record(two_threads), record(AMD)])
    assert table.values.tolist() == [["AMD EPYC (AVX512)", "1, 2", 3, 75.0],
                                     ["Intel(R) Xeon(R) Processor (AVX512)", "1", 1, 25.0]]
    assert machines_table([]).columns.tolist() == ["machine", "torch threads", "records", "share (%)"]


def test_run_machines_reads_each_stored_runs_env(tmp_path):
    planned = study_configs("parts", "smoke", [0], part_counts=[3, 6])
    metrics = {"results": {mode: {"R1": 0.5, "R5": 0.5, "R10": 0.5, "mAP": 0.25, "mINP": 0.1, "num_skipped": 0}
                           for mode in ("SQ", "MQ", "SQ+RR", "MQ+RR")}}
    write_record(tmp_path, planned[0].config, metrics, [{"stage": 1, "epoch": 1, "loss": 2.5}], AMD,
                 "query,pid\n", {})
    assert run_machines(runs_table(planned, tmp_path)) == {("3 parts", 0): "AMD EPYC (AVX512)"}
