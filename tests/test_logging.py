"""Run-folder CSVs: written by CsvLog, read back by read_eval, cut by truncate_csv."""

from seer_jax.logging import CsvLog, read_eval, truncate_csv


def test_eval_csv_round_trip_and_truncate(tmp_path):
    assert read_eval(str(tmp_path)) == []
    log = CsvLog(str(tmp_path / "eval.csv"))
    for step, ret in ((10_000, 1.5), (20_000, 2.5), (30_000, 4.0)):
        log.write({"env_steps": step, "return_mean": ret, "return_std": 0.5, "episodes": 10, "phase": "latents"})
    rows = read_eval(str(tmp_path))
    assert rows[1] == {"env_steps": 20_000, "return_mean": 2.5, "return_std": 0.5, "episodes": 10.0, "phase": "latents"}
    assert isinstance(rows[0]["env_steps"], int)
    truncate_csv(str(tmp_path / "eval.csv"), 20_000)
    assert [r["env_steps"] for r in read_eval(str(tmp_path))] == [10_000, 20_000]
    # A reopened log keeps appending under the same columns.
    CsvLog(str(tmp_path / "eval.csv")).write({"env_steps": 40_000, "return_mean": 9.0, "phase": "latents"})
    assert read_eval(str(tmp_path))[-1] == {"env_steps": 40_000, "return_mean": 9.0, "phase": "latents"}
