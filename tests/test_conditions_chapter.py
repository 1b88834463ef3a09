"""The conditions chapter through papermill, as the acceptance command runs it: on the smoke profile, a
small default benchmark and an empty results store, ``train_missing=True`` writes the missing
variants beside the default benchmark, trains the requested runs, and the chapter's tables and
figures show them."""

from pathlib import Path

import nbformat
import pandas as pd
import papermill
from test_study_chapters import output_text

from mpm.data.synthetic.config import SynthConfig, variant_config
from mpm.data.synthetic.generate import generate_benchmark, generator_meta
from mpm.runs.studies import is_stored, study_configs

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "conditions.ipynb"
SMALL = SynthConfig(train_identities=8, test_identities=6, cameras=3, cameras_per_identity=(2, 3),
                    images_per_tracklet=(3, 4), distractors=2, junk=1, seed=5)
ROW = "(4) + Mask + MP"


def test_the_chapter_writes_the_variants_trains_the_missing_runs_and_shows_them(tmp_path, monkeypatch):
    default = generate_benchmark(tmp_path / "data" / "synthetic", SMALL)
    figures, results = tmp_path / "figures", tmp_path / "runs"
    monkeypatch.setenv("MPM_FIGURES", str(figures))
    choice = {"background_levels": ["default"], "mask_levels": ["dilated"], "rows": [ROW]}
    parameters = {"profile_name": "smoke", "seeds": [0], "data_root": str(default), "results_root": str(results),
                  "train_missing": True, **choice}
    # run outside the project, so that the runs' checkpoints go to tmp_path/.cache
    papermill.execute_notebook(str(CHAPTER), str(tmp_path / "out.ipynb"), parameters=parameters, cwd=str(tmp_path),
                               progress_bar=False, kernel_name="python3")

    meta = generator_meta(tmp_path / "data" / "synthetic-masks-dilated")
    assert SynthConfig(**meta["config"]) == variant_config("synthetic-masks-dilated", SMALL)
    assert not (tmp_path / "data" / "synthetic-background-middle").exists()
    runs = study_configs("conditions", "smoke", [0], data_root=str(default), background_levels=["default"],
                         mask_levels=["exact", "dilated"], rows=[ROW])
    assert [run.setting.label for run in runs] == [ROW, f"{ROW}, masks dilated"]
    assert all(is_stored(run.config, results) for run in runs)
    text = output_text(nbformat.read(tmp_path / "out.ipynb", as_version=4))
    assert f"2 of 2 requested runs of the conditions study are stored in {results}" in text
    assert "0 of 2 requested runs missing" in text
    assert "0 of 1 variant folders missing" in text
    shown = pd.read_csv(figures / "conditions" / "masks-sq-map.csv")
    assert shown[["row", "level", "seeds"]].values.tolist() == [[ROW, "exact", 1], [ROW, "dilated", 1]]
    change = pd.read_csv(figures / "conditions" / "masks-gain.csv")
    assert change[["row", "level", "over", "n"]].values.tolist() == [[ROW, "dilated", "(4) at exact", 1]]
