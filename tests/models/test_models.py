import pytest
import torch

from facecli.models import create_model, default_config
from facecli.models.info import backbone_info
from facecli.registry import BACKBONES

SMALLEST = [(name, BACKBONES.get(name).min_size) for name in BACKBONES.names()] + [("timm/resnet18", 32)]


@pytest.mark.parametrize(("name", "size"), SMALLEST)
def test_backbone_forward_backward_at_smallest_input(name, size):
    model = create_model(name, input_size=size, embedding_size=16).train()
    x = torch.randn(2, 3, size, size, requires_grad=False)
    out = model(x)
    assert out.shape == (2, 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_below_minimum_size_is_a_user_error():
    from facecli.errors import FaceCliError

    with pytest.raises(FaceCliError, match="minimum"):
        default_config("inception_resnetv1", input_size=40)


@pytest.mark.parametrize(
    ("name", "params_m", "gflops"),
    [("mobilenet", 3.34, 0.58), ("iresnet50", 43.59, 12.62), ("inception_resnetv1", 22.79, 2.83)],
)
def test_info_reports_published_sizes(name, params_m, gflops):
    info = backbone_info(name)
    assert info.params / 1e6 == pytest.approx(params_m, abs=0.01)
    assert info.gflops == pytest.approx(gflops, abs=0.01)


def test_preprocess_uses_config_normalisation_and_letterbox():
    import numpy as np

    model = create_model("mobilenet", input_size=32)
    wide = np.full((10, 40, 3), 255, np.uint8)
    batch = model.preprocess([wide])
    assert batch.shape == (1, 3, 32, 32)
    # letterboxed: white content in the middle rows, grey 128/255 padding above and below
    assert batch[0, 0, 16, 16].item() == pytest.approx(1.0)
    assert batch[0, 0, 0, 16].item() == pytest.approx(128 / 255)

    arc = create_model("iresnet18", input_size=16)
    batch = arc.preprocess([np.zeros((20, 20, 3), np.uint8)])
    torch.testing.assert_close(batch, torch.full((1, 3, 16, 16), -1.0))
