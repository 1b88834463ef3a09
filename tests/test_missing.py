import pandas as pd

from mpm.analysis.missing import missing_runs, show_missing_runs, train_command
from mpm.runs.store import write_record
from mpm.runs.studies import runs_table, study_configs
from test_studies import QUERIES, fake_metrics

LONG_COMMAND = "mpm train --profile cpu " + " ".join(f"--set field_{i}=value_{i}" for i in range(12))


def test_missing_runs_are_counted_and_listed_with_their_whole_command(capsys):
    missing = pd.DataFrame([{"setting": "t=0.5 + gate", "seed": 0, "status": "missing", "command": LONG_COMMAND}])
    show_missing_runs(missing, 24)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1 of 24 requested runs missing"
    assert LONG_COMMAND in "\n".join(lines[1:])


def test_nothing_but_the_count_when_no_run_is_missing(capsys):
    show_missing_runs(pd.DataFrame(columns=["setting", "seed", "command"]), 28, "ablation runs not stored")
    assert capsys.readouterr().out == "0 of 28 ablation runs not stored\n"


def test_missing_runs_name_the_command_that_trains_them(tmp_path):
    runs = study_configs("thresholds", "smoke", [1], thresholds=[0.4, 0.5], readings=["gated"])
    write_record(tmp_path, runs[0].config, fake_metrics(0.5, 0.25), [], {}, QUERIES, {})
    missing = missing_runs(runs, runs_table(runs, tmp_path), "smoke", tmp_path)
    assert missing.to_dict("records") == [{
        "setting": "t=0.5 + gate", "seed": 1, "status": "missing",
        "command": f"mpm train --profile smoke --set mask_gate=true --set threshold=0.5 --set seed=1 "
                   f"--results {tmp_path}"}]
    baseline = study_configs("ablation", "cpu", [0], rows=["(1) Baseline"])[0].config
    assert train_command(baseline, "cpu", "results/runs") == (
        "mpm train --profile cpu --set mask_mode=none --set triplet_loss=none --set selector=random")
    assert train_command(baseline.replace(stage3={"epochs": 5}), "cpu") == (
        "mpm train --profile cpu --set mask_mode=none --set triplet_loss=none --set selector=random "
        "--set stage3.epochs=5")
