import pandas as pd

from mpm.analysis.missing import show_missing_runs

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
