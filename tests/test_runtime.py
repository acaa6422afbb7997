import pytest
import torch

from facecli.errors import FaceCliError
from facecli.runtime import resolve_runtime


def test_cpu_resolves_to_fp32():
    rt = resolve_runtime("cpu", "auto")
    assert rt.device == torch.device("cpu") and rt.precision == "fp32"
    assert "cpu, fp32" in rt.describe()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_auto_picks_cpu_without_gpu_and_cuda_request_explains():
    assert resolve_runtime("auto").device.type in ("cpu", "mps")
    with pytest.raises(FaceCliError, match="CUDA is not available"):
        resolve_runtime("cuda")


def test_unknown_precision_lists_the_choices():
    with pytest.raises(FaceCliError, match=r"did you mean 'bf16'.*fp32"):
        resolve_runtime("cpu", "bf61")


def test_unknown_device_is_a_user_error():
    with pytest.raises(FaceCliError, match="unknown device"):
        resolve_runtime("tpu")


def test_bf16_autocast_runs_a_model_on_cpu():
    rt = resolve_runtime("cpu", "bf16", channels_last=True)
    model = rt.prepare(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2)))
    with rt.autocast():
        out = model(rt.batch(torch.randn(2, 3, 8, 8)))
    assert out.dtype == torch.bfloat16
    assert "channels_last" in rt.describe()


def test_the_memory_format_left_to_auto_follows_the_measured_table_and_a_flag_wins():
    auto = resolve_runtime("cpu", "fp32")
    assert auto.channels_last is None and "memory format auto" in auto.describe()
    assert auto.for_model("mobilenet", training=True).channels_last is True
    assert auto.for_model("inception_resnetv1", training=True).channels_last is False  # measured slower
    assert auto.for_model("inception_resnetv1", training=False).channels_last is True
    assert auto.for_model("timm/resnet10t", training=False).channels_last is True
    assert auto.for_model("timm/resnet10t", training=True).channels_last is False  # level: kept simple
    forced = resolve_runtime("cpu", "fp32", channels_last=False)
    assert forced.for_model("mobilenet", training=True).channels_last is False


def test_auto_memory_format_embeds_as_contiguous_does():
    from facecli.embed import TorchEmbedder
    from facecli.models import create_model

    model = create_model("mobilenet", input_size=64, embedding_size=16).eval()
    x = torch.randn(3, 3, 64, 64)
    auto = TorchEmbedder(model, resolve_runtime("cpu", "fp32"))
    plain = TorchEmbedder(model, resolve_runtime("cpu", "fp32", channels_last=False))
    assert auto.runtime.channels_last and not plain.runtime.channels_last
    assert abs(auto.embed(x, flip=False) - plain.embed(x, flip=False)).max() < 1e-5
