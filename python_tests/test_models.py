"""Tests of clue_ext.models: shapes, the common interface, pretrained-weight loading."""

import pytest
import torch
import torchvision
from torch import nn

from clue_ext.models import (
    LeNet,
    PretrainedWeightsNotFoundError,
    ResNet34Classifier,
    available_models,
    build_model,
)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """A torch hub cache that holds no weights, so nothing is found by accident."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


@pytest.fixture(scope="module")
def imagenet_like_state(tmp_path_factory):
    """A random torchvision resnet34 state dict saved like the ImageNet file."""
    torch.manual_seed(0)
    state = torchvision.models.resnet34(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet34-b627a593.pth"
    torch.save(state, path)
    return state, path


def test_available_models_lists_the_papers_networks_then_torchvisions():
    names = available_models()
    assert names[:2] == ["lenet", "resnet34"]
    assert {"resnet18", "resnet50", "efficientnet_b0", "vit_b_16"} <= set(names)
    assert "inception_v3" not in names  # auxiliary outputs in training mode: no single embedding


def test_unknown_model_name_names_the_valid_ones():
    with pytest.raises(ValueError, match="lenet.*resnet34"):
        build_model("not_a_model", 10)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_lenet_returns_logits_and_500d_embedding(in_channels):
    model = build_model("lenet", 7, in_channels=in_channels).eval()
    x = torch.randn(5, in_channels, 28, 28)
    logits, embedding = model(x)
    assert isinstance(model, LeNet)
    assert logits.shape == (5, 7)
    assert embedding.shape == (5, 500) == (5, model.embedding_dim)
    # forward is features followed by classifier, the contract strategies rely on.
    assert torch.allclose(model.classifier(model.features(x)), logits)


def test_lenet_architecture_matches_the_paper_variant():
    model = LeNet(num_classes=10, in_channels=3)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(3, 20, (5, 5)), (20, 50, (5, 5))]
    assert any(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in model.modules())
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2


def test_lenet_head_is_relu_dropout_linear_as_the_authors():
    """fc -> ReLU -> Dropout(0.5) -> Linear; the ReLU closes features (the embedding is rectified)."""
    model = LeNet(num_classes=10, in_channels=1)
    fc, relu = list(model.encoder)[-2:]
    assert isinstance(fc, nn.Linear) and (fc.in_features, fc.out_features) == (800, 500)
    assert isinstance(relu, nn.ReLU)
    dropout, linear = list(model.classifier)
    assert type(dropout) is nn.Dropout and dropout.p == 0.5
    assert isinstance(linear, nn.Linear) and (linear.in_features, linear.out_features) == (500, 10)
    # The head's dropout is live in training: the same embedding gives different logits.
    embedding = torch.rand(64, 500)
    model.train()
    assert not torch.equal(model.classifier(embedding), model.classifier(embedding))
    model.eval()
    assert torch.equal(model.classifier(embedding), model.classifier(embedding))


def test_lenet_rejects_wrong_input_with_a_clear_message():
    model = LeNet(num_classes=10, in_channels=1)
    with pytest.raises(ValueError, match="28x28"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="channel"):
        model(torch.randn(2, 3, 28, 28))


def test_lenet_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model("lenet", 10, pretrained=True)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_num_classes_is_rejected(bad):
    with pytest.raises(ValueError, match="num_classes"):
        build_model("lenet", bad)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_resnet34_returns_logits_and_512d_embedding(in_channels):
    torch.manual_seed(0)
    model = build_model("resnet34", 5, in_channels=in_channels, pretrained=False).eval()
    x = torch.randn(2, in_channels, 64, 64)
    with torch.no_grad():
        logits, embedding = model(x)
        assert torch.allclose(model.classifier(model.features(x)), logits, atol=1e-5)
    assert logits.shape == (2, 5)
    assert embedding.shape == (2, 512) == (2, model.embedding_dim)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.out_features == 5


def test_resnet34_pretrained_without_weights_explains_how_to_provide_them(empty_torch_home):
    with pytest.raises(PretrainedWeightsNotFoundError) as error:
        build_model("resnet34", 10, pretrained=True)
    message = str(error.value)
    assert "weights_path" in message
    assert str(empty_torch_home) in message  # the exact cache location to drop the file in
    assert "resnet34-b627a593.pth" in message
    assert "pretrained=False" in message


def test_resnet34_loads_a_local_weights_file(imagenet_like_state, empty_torch_home):
    state, path = imagenet_like_state
    model = build_model("resnet34", 10, weights_path=path)
    loaded = model.backbone.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key
    assert model.classifier.out_features == 10


def test_resnet34_one_channel_sums_pretrained_rgb_kernels(imagenet_like_state, empty_torch_home):
    state, path = imagenet_like_state
    model = ResNet34Classifier(10, in_channels=1, weights_path=path)
    assert torch.allclose(model.backbone.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def test_resnet34_finds_weights_in_the_torch_hub_cache(imagenet_like_state, empty_torch_home):
    state, path = imagenet_like_state
    checkpoints = empty_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / path.name).write_bytes(path.read_bytes())
    model = build_model("resnet34", 3, pretrained=True)
    assert torch.equal(model.backbone.layer4[0].conv1.weight, state["layer4.0.conv1.weight"])


def test_resnet34_rejects_weights_of_another_network(tmp_path):
    path = tmp_path / "lenet.pth"
    torch.save(LeNet(10).state_dict(), path)
    with pytest.raises(ValueError, match="resnet34"):
        build_model("resnet34", 10, weights_path=path)


def test_resnet34_missing_weights_file_is_reported(tmp_path):
    with pytest.raises(PretrainedWeightsNotFoundError, match="does not exist"):
        build_model("resnet34", 10, weights_path=tmp_path / "nope.pth")
