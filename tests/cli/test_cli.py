from typer.testing import CliRunner

from facecli.cli import app

runner = CliRunner()


def test_synth_then_annotate_through_the_cli(tmp_path):
    data = tmp_path / "faces"
    result = runner.invoke(app, ["synth", str(data), "--identities", "3", "--images", "2", "--size", "32"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["annotate", str(data), "--out", str(tmp_path), "--check"])
    assert result.exit_code == 0, result.output
    assert "data report" in result.output and "identities" in result.output
    assert len((tmp_path / "cls_train.txt").read_text().splitlines()) == 6


def test_user_error_is_one_line_exit_2_without_traceback(tmp_path):
    result = runner.invoke(app, ["annotate", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "not a directory" in lines[0]


def test_models_lists_every_backbone(monkeypatch):
    from facecli.console import console

    monkeypatch.setattr(console, "width", 200)
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in ("mobilenet", "inception_resnetv1", "iresnet100", "vgg16", "margin", "arcface", "triplet", "siamese"):
        assert name in result.output


def test_the_training_summary_says_what_chose_the_kept_epoch():
    from pathlib import Path

    from rich.console import Console

    from facecli.cli.tables import training_table
    from facecli.training.run_log import TrainResult

    result = TrainResult(Path("run"), "finished", 9, 90, best_epoch=7, best_accuracy=0.8125, best_score=0.9375)
    console = Console(width=200, record=True)
    console.print(training_table(result))
    assert "7 (accuracy 0.8125, chosen by the recent validations' mean AUC 0.9375)" in console.export_text()
    console.print(training_table(TrainResult(Path("run"), "finished", 9, 90, best_epoch=4)))
    assert "4 (lowest loss)" in console.export_text()
