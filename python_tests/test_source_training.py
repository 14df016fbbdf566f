"""The source model: trained on a seeded train part, kept at its best validation epoch."""

import pytest
import torch
from torch.utils.data import TensorDataset

from clue_ext.experiments import get_preset
from clue_ext.experiments import training
from clue_ext.experiments.training import split_source_validation, train_source_model
from clue_ext.models import LeNet

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIG = get_preset("tiny").config.replace(source_epochs=4, source_lr=1e-3, batch_size=16)


def digits(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(4, (n,), generator=g)
    images = 0.3 * torch.randn(n, 1, 28, 28, generator=g)
    for c in range(4):
        images[labels == c, :, 4 * c : 4 * c + 6, 4:20] += 1.0
    return TensorDataset(images, labels)


def test_the_source_model_ends_at_its_best_validation_epoch(monkeypatch):
    """Validation accuracies 50, 80, 60, 70: the model must end with epoch 2's weights."""
    scripted = iter([50.0, 80.0, 60.0, 70.0])
    states = []

    def scripted_accuracy(model, dataset, device, **kwargs):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scripted)

    monkeypatch.setattr(training, "evaluate_accuracy", scripted_accuracy)
    torch.manual_seed(0)
    model = LeNet(num_classes=4)
    result = train_source_model(model, CONFIG, digits(64), seed=0, device="cpu", progress=False,
                                source_val=digits(16, seed=1))
    assert (result.best_epoch, result.val_accuracy) == (2, 80.0)
    assert len(states) == 4  # one validation per epoch
    final = model.state_dict()
    assert all(torch.equal(final[k], states[1][k]) for k in final)
    assert not all(torch.equal(final[k], states[3][k]) for k in final)


def test_without_validation_the_last_epoch_is_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(training, "evaluate_accuracy", lambda *a, **k: calls.append(1) or 0.0)
    result = train_source_model(LeNet(num_classes=4), CONFIG, digits(64), seed=0, device="cpu", progress=False)
    assert (result.best_epoch, result.val_accuracy, calls) == (4, None, [])


def test_ties_keep_the_earliest_epoch(monkeypatch):
    scripted = iter([70.0, 70.0, 70.0, 70.0])
    monkeypatch.setattr(training, "evaluate_accuracy", lambda *a, **k: next(scripted))
    result = train_source_model(LeNet(num_classes=4), CONFIG, digits(64), seed=0, device="cpu", progress=False,
                                source_val=digits(16, seed=1))
    assert result.best_epoch == 1


def test_validation_split_is_seeded_disjoint_and_sized_as_the_authors():
    data = digits(103)
    train, val = split_source_validation(data, 0.2, seed=5)
    assert (len(train), len(val)) == (103 - 20, 20)  # floor(0.2 * 103) held out
    assert set(train.indices.tolist()).isdisjoint(val.indices.tolist())
    assert sorted(train.indices.tolist() + val.indices.tolist()) == list(range(103))
    again_train, _ = split_source_validation(data, 0.2, seed=5)
    other_train, _ = split_source_validation(data, 0.2, seed=6)
    assert torch.equal(again_train.indices, train.indices)
    assert not torch.equal(other_train.indices, train.indices)
    assert split_source_validation(data, 0.0, seed=5) == (data, None)
