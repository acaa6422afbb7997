"""What a run reports: curves.png plotted as often as its measured cost allows, and always at the end."""

from facecli import plots
from facecli.training import run_log
from facecli.training.run_log import PLOT_WAIT, RunLog


def test_curves_wait_for_the_run_to_spend_many_times_a_plots_cost_and_the_last_epoch_is_always_plotted(
    tmp_path, monkeypatch
):
    clock = [0.0]
    plotted = []

    def plot(history, path):
        plotted.append(len(history))
        clock[0] += 1.0  # a plot costs one second

    monkeypatch.setattr(run_log.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(plots, "training_curves", plot)
    log = RunLog(tmp_path, enabled=True, tensorboard=False, purge_step=None)
    history = []
    for epoch in range(1, 13):
        clock[0] += 10.0  # an epoch takes ten
        history.append({"epoch": epoch, "step": epoch, "loss": 1.0 / epoch, "lr": 0.1})
        log.end_epoch(history[-1], history, plot=True, last=epoch == 12)
    # after each plot the run spends PLOT_WAIT (50) x 1 s, five epochs, before the next
    assert PLOT_WAIT == 50 and plotted == [1, 6, 11, 12]
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 13  # the table is written every epoch
