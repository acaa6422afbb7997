import pytest

from facecli.errors import FaceCliError
from facecli.registry import BACKBONES, HEADS, LOSSES, Registry


def test_decorator_registers_and_get_returns_entry():
    reg: Registry = Registry("widget")

    @reg.register("round")
    def round_widget():
        return "round"

    assert reg.get("round") is round_widget
    assert reg.names() == ["round"]
    assert "round" in reg


def test_registering_a_name_twice_is_a_bug():
    reg: Registry = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a", 2)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(FaceCliError, match="did you mean 'mobilenet'"):
        BACKBONES.get("mobilenett")


def test_all_published_backbones_registered():
    expected = {"mobilenet", "inception_resnetv1", "iresnet18", "iresnet34", "iresnet50", "iresnet100", "vgg16"}
    assert expected <= set(BACKBONES.names())


def test_timm_prefix_resolves_and_rejects_unknown_architectures():
    spec = BACKBONES.get("timm/resnet18")
    assert spec.input_size == 224
    with pytest.raises(FaceCliError, match="unknown timm architecture"):
        BACKBONES.get("timm/resnet_does_not_exist")


def test_heads_and_losses_use_the_same_mechanism():
    assert isinstance(HEADS, Registry) and isinstance(LOSSES, Registry)
    assert HEADS.kind == "head" and LOSSES.kind == "loss"
