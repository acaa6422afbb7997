"""The best epoch's judge: the mean validation AUC of the last few validations, kept across a resume."""

from facecli.training.state import SMOOTHING, Best, TrainState


def _judged(aucs: list[float]) -> Best:
    best = Best()
    for epoch, auc in enumerate(aucs, 1):
        best.update(epoch, loss=1.0, accuracy=auc, auc=auc)
    return best


def test_one_lucky_validation_does_not_outrank_a_steady_rise():
    best = _judged([0.6, 0.95, 0.7, 0.85, 0.88, 0.9])  # epoch 2 alone scores highest
    assert SMOOTHING == 3 and best.epoch == 6 and best.accuracy == 0.9
    assert abs(best.score - (0.85 + 0.88 + 0.9) / 3) < 1e-12


def test_a_fall_leaves_the_best_behind_and_counts_stale_validations():
    best = _judged([0.7, 0.8, 0.9, 0.6, 0.5])
    assert best.epoch == 3 and best.stale == 2


def test_ties_keep_the_later_epoch_but_run_the_patience_out():
    best = _judged([0.75, 0.75, 0.75])  # exact in binary: equal means
    assert best.epoch == 3 and best.stale == 2


def test_without_validation_the_lowest_loss_is_the_best():
    best = Best()
    for epoch, loss in enumerate([3.0, 2.0, 2.5], 1):
        best.update(epoch, loss)
    assert best.epoch == 2 and best.stale == 1 and best.best_accuracy is None


def test_the_recent_validations_survive_a_resume_and_older_files_still_load():
    state = TrainState(best=_judged([0.6, 0.7]))
    resumed = TrainState.from_dict(state.to_dict())
    resumed.best.update(3, 1.0, accuracy=0.8, auc=0.8)
    assert resumed.best.recent == [0.6, 0.7, 0.8] and resumed.best.epoch == 3
    saved = state.to_dict()
    saved["best"] = {k: saved["best"][k] for k in ("accuracy", "loss", "epoch", "stale")}  # before the rule
    assert TrainState.from_dict(saved).best.recent == []
