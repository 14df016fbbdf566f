"""Tests of clue_ext.adapt: the DA methods, gradient reversal, discriminators, streams."""

import copy
from collections import Counter

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from clue_ext.adapt import (
    DANN,
    DomainDiscriminator,
    GradientReversal,
    available_da_methods,
    embed_dataset,
    get_da_method,
    grad_reverse,
    train_domain_discriminator,
)
from clue_ext.adapt.losses import entropy_from_logits
from clue_ext.adapt.streams import EndlessBatchIndices
from clue_ext.models import LeNet

NUM_CLASSES = 4
# Small but real: batch 16 and 96 images per domain give 6 steps per epoch.
FAST = dict(lr=1e-3, batch_size=16, step_size=None, seed=0)


pytestmark = pytest.mark.usefixtures("single_thread")


def make_digits(n, *, inverted, seed):
    """Four classes of 28x28 images, each a bright square in its own quadrant.

    The target domain inverts intensities: same labels, a visible domain shift.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(NUM_CLASSES, (n,), generator=generator)
    images = 0.3 * torch.randn(n, 1, 28, 28, generator=generator)
    for c in range(NUM_CLASSES):
        row, col = divmod(c, 2)
        images[labels == c, :, 3 + 13 * row : 12 + 13 * row, 3 + 13 * col : 12 + 13 * col] += 1.0
    if inverted:
        images = 0.5 - images
    return TensorDataset(images, labels)


@pytest.fixture(scope="module")
def domains():
    source = make_digits(96, inverted=False, seed=0)
    target = make_digits(96, inverted=True, seed=1)
    target_labeled = Subset(target, range(12))
    return source, target_labeled, target


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return LeNet(num_classes=NUM_CLASSES, in_channels=1)


def weights_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run_round(name, domains, *, epochs=3, model=None, method=None, **hparams):
    source, target_labeled, target = domains
    model = model or fresh_model()
    method = method or get_da_method(name, **{**FAST, **hparams})
    history = method.train_round(model, source, target_labeled, target, epochs=epochs, device="cpu", progress=False)
    return model, method, history


# ------------------------------------------------------------------ registry & hparams


def test_registry_lists_every_method():
    assert available_da_methods() == ["dann", "ent", "ft", "mmd", "mme", "vada"]
    assert get_da_method("MME").name == "mme"


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(ValueError, match="dann.*ft.*mme"):
        get_da_method("dirt-t")


@pytest.mark.parametrize(
    "hparams, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 12.5}, "batch_size"),
        ({"src_weight": -0.1}, "src_weight"),
        ({"unsup_weight": -1}, "unsup_weight"),
        ({"cent_weight": -1}, "cent_weight"),
        ({"step_size": 0}, "step_size"),
        ({"gamma": 1.5}, "gamma"),
        ({"seed": -1}, "seed"),
        ({"uda_lr": -2e-4}, "uda_lr"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
        ({"learning_rate": 1e-3}, "learning_rate"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_argument(hparams, argument):
    with pytest.raises(ValueError, match=argument):
        get_da_method("mme", **hparams)


@pytest.mark.parametrize("epochs", [-1, 1.5, True])
def test_bad_epochs_raise(domains, epochs):
    source, target_labeled, target = domains
    for method in (get_da_method("mme"), get_da_method("ft")):
        with pytest.raises(ValueError, match="epochs"):
            method.train_round(fresh_model(), source, target_labeled, target, epochs=epochs, device="cpu")
        with pytest.raises(ValueError, match="epochs"):
            method.adapt_unsupervised(fresh_model(), source, target, epochs=epochs, device="cpu")


def test_missing_datasets_raise_naming_them(domains):
    source, target_labeled, target = domains
    with pytest.raises(ValueError, match="target_labeled"):
        get_da_method("ft").train_round(fresh_model(), source, Subset(target, []), target, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="target_unlabeled"):
        get_da_method("mme").train_round(fresh_model(), source, target_labeled, None, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="source_train"):
        get_da_method("dann").adapt_unsupervised(fresh_model(), None, target, epochs=1, device="cpu")


# ----------------------------------------------------------------------- gradient reversal


def test_gradient_reversal_is_identity_forward_and_negates_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.5 * torch.arange(3.0).expand(4, 3))

    x.grad = None
    GradientReversal(2.0)(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((4, 3), -2.0))


# ------------------------------------------------------------------------ learning


@pytest.mark.parametrize("name", ["ft", "mme", "dann", "vada", "ent", "mmd"])
def test_train_round_lowers_the_training_loss(domains, name):
    initial = weights_of(fresh_model())
    # An epoch is one pass over the 12 labels: a single step, so give it many epochs.
    epochs = 12
    model, _, history = run_round(name, domains, epochs=epochs)
    assert len(history["loss"]) == epochs
    assert history["loss"][-1] < 0.7 * history["loss"][0], history
    assert not same_weights(initial, weights_of(model))


@pytest.mark.parametrize("name", ["mme", "dann", "vada", "ent", "mmd"])
def test_adapt_unsupervised_lowers_the_training_loss(domains, name):
    source, _, target = domains
    method = get_da_method(name, **FAST)
    history = method.adapt_unsupervised(fresh_model(), source, target, epochs=3, device="cpu", progress=False)
    assert "ce_target" not in history  # round 0 never sees target labels
    assert history["loss"][-1] < 0.7 * history["loss"][0], history


def test_ft_round_zero_is_a_documented_no_op(domains):
    source, _, target = domains
    model = fresh_model()
    before = weights_of(model)
    history = get_da_method("ft").adapt_unsupervised(model, source, target, epochs=5, device="cpu")
    assert history == {"loss": []}
    assert same_weights(before, weights_of(model))


def test_ft_with_source_also_trains_on_source(domains):
    _, _, history = run_round("ft", domains, epochs=1, use_source=True)
    assert "ce_source" in history
    _, _, history = run_round("ft", domains, epochs=1)
    assert "ce_source" not in history


class StepCounter:
    """Counts optimiser steps (any Adam) and records the labeled-target batch sizes."""

    def __init__(self, monkeypatch, method):
        self.optimizer_steps = 0
        self.labeled_batches = []
        original_step = torch.optim.Adam.step

        def counting_step(optimizer, *args, **kwargs):
            self.optimizer_steps += 1
            return original_step(optimizer, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
        original_train_step = method._train_step

        def recording_train_step(model, batch, optimizer, weights):
            if batch.target is not None:
                self.labeled_batches.append(batch.target[1].tolist())
            return original_train_step(model, batch, optimizer, weights)

        method._train_step = recording_train_step


# Optimiser updates per training step: MME's supervised step, then its adversarial-entropy step.
UPDATES_PER_STEP = {"ft": 1, "mme": 2, "dann": 1, "vada": 1, "ent": 1, "mmd": 1}


@pytest.mark.parametrize("name", available_da_methods())
@pytest.mark.parametrize("n_labels, batch_size", [(12, 16), (40, 16), (40, 8)])
def test_an_epoch_after_round_zero_is_one_pass_over_the_labels(monkeypatch, domains, name, n_labels, batch_size):
    """The authors' loop ends an epoch when the labeled-target loader runs out: ceil(n / batch) steps."""
    source, _, target = domains
    labeled = Subset(target, range(n_labels))
    method = get_da_method(name, **{**FAST, "batch_size": batch_size})
    counter = StepCounter(monkeypatch, method)
    epochs = 3
    method.train_round(fresh_model(), source, labeled, target, epochs=epochs, device="cpu", progress=False)
    steps_per_epoch = -(-n_labels // batch_size)
    assert counter.optimizer_steps == epochs * steps_per_epoch * UPDATES_PER_STEP[name]
    # Each epoch sees every label exactly once, the last batch holding the remainder.
    sizes = [len(b) for b in counter.labeled_batches]
    last = n_labels - (steps_per_epoch - 1) * batch_size
    assert sizes == ([batch_size] * (steps_per_epoch - 1) + [last]) * epochs
    labels = torch.as_tensor([target[i][1] for i in range(n_labels)])
    for epoch in range(epochs):
        seen = sum(counter.labeled_batches[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch], [])
        assert Counter(seen) == Counter(labels.tolist())


@pytest.mark.parametrize("name", ["mme", "dann", "ent"])
def test_pool_epochs_pass_over_the_unlabeled_pool_in_full_batches(monkeypatch, domains, name):
    source, target_labeled, target = domains
    method = get_da_method(name, **{**FAST, "epoch_length": "pool"})
    counter = StepCounter(monkeypatch, method)
    method.train_round(fresh_model(), source, target_labeled, target, epochs=2, device="cpu", progress=False)
    assert counter.optimizer_steps == 2 * (96 // 16) * UPDATES_PER_STEP[name]
    assert all(len(b) == 16 for b in counter.labeled_batches)  # the 12 labels cycled to fill each batch


@pytest.mark.parametrize("name", ["mme", "dann", "vada", "ent", "mmd"])
def test_a_round_zero_epoch_ends_with_the_shorter_of_source_and_pool(monkeypatch, domains, name):
    source, _, target = domains
    method = get_da_method(name, **FAST)
    counter = StepCounter(monkeypatch, method)
    short_pool = Subset(target, range(40))  # ceil(40 / 16) = 3 batches < ceil(96 / 16) = 6
    method.adapt_unsupervised(fresh_model(), source, short_pool, epochs=2, device="cpu", progress=False)
    assert counter.optimizer_steps == 2 * 3 * UPDATES_PER_STEP[name]


def test_steps_per_epoch_caps_an_epoch(monkeypatch, domains):
    source, _, target = domains
    method = get_da_method("dann", **{**FAST, "steps_per_epoch": 2})
    counter = StepCounter(monkeypatch, method)
    method.train_round(fresh_model(), source, Subset(target, range(64)), target, epochs=3, device="cpu",
                       progress=False)
    assert counter.optimizer_steps == 3 * 2  # min(ceil(64 / 16), 2) steps per epoch


def test_round_zero_uses_its_own_learning_rate(domains):
    source, _, target = domains
    model = fresh_model()
    before = weights_of(model)
    method = get_da_method("mme", **{**FAST, "lr": 1e-1, "uda_lr": 1e-9})
    method.adapt_unsupervised(model, source, target, epochs=1, device="cpu", progress=False)
    # Adam moves each weight by about lr per step: 6 steps x 2 updates x 1e-9.
    change = max((weights_of(model)[k] - before[k]).abs().max().item() for k in before)
    assert 0 < change < 1e-6


def test_round_zero_mme_entropy_weight_is_used(domains):
    source, _, target = domains
    results = []
    for weight in (0.0, 1.0):
        model = fresh_model()
        get_da_method("mme", **FAST, uda_unsup_weight=weight).adapt_unsupervised(
            model, source, target, epochs=1, device="cpu", progress=False
        )
        results.append(weights_of(model))
    assert not same_weights(*results)


def mean_entropy(model, images):
    model.eval()
    with torch.no_grad():
        return entropy_from_logits(model(images)[0]).mean().item()


@pytest.fixture(scope="module")
def confident_weights(domains):
    """Weights of a model partly fitted to target labels: entropy well inside (0, log C),
    so it can move either way."""
    _, _, target = domains
    model = fresh_model()
    get_da_method("ft", **FAST).train_round(model, None, target, None, epochs=1, device="cpu", progress=False)
    entropy = mean_entropy(model, target.tensors[0])
    assert 0.1 < entropy / torch.log(torch.tensor(float(NUM_CLASSES))).item() < 0.9, entropy
    return weights_of(model)


@pytest.mark.parametrize("trained, direction", [("classifier", +1), ("encoder", -1)])
def test_mme_classifier_maximises_and_features_minimise_entropy(domains, confident_weights, trained, direction):
    """Only MME's adversarial step acts (no source loss, no weight decay); training
    one side at a time shows the sign each side gets through the reversal layer."""
    source, _, target = domains
    model = fresh_model()
    model.load_state_dict(confident_weights)
    frozen = "encoder" if trained == "classifier" else "classifier"
    for parameter in getattr(model, frozen).parameters():
        parameter.requires_grad_(False)
    images = target.tensors[0]
    before = mean_entropy(model, images)
    method = get_da_method("mme", **{**FAST, "weight_decay": 0.0, "uda_src_weight": 0.0})
    method.adapt_unsupervised(model, source, target, epochs=1, device="cpu", progress=False)
    assert direction * (mean_entropy(model, images) - before) > 0.05 * before


def test_dann_features_fight_the_discriminator(domains):
    """With the discriminator frozen and only the domain loss on, the reversal layer
    makes the feature extractor *raise* the discriminator's loss."""
    source, _, target = domains
    method = get_da_method("dann", **{**FAST, "weight_decay": 0.0, "uda_src_weight": 0.0, "cent_weight": 0.0})
    model = fresh_model()
    method.adapt_unsupervised(model, source, target, epochs=1, device="cpu", progress=False)
    for parameter in method.domain_discriminator.parameters():
        parameter.requires_grad_(False)
    history = method.adapt_unsupervised(model, source, target, epochs=3, device="cpu", progress=False)
    assert history["domain_loss"][-1] > history["domain_loss"][0]


def test_tiny_labeled_set_is_cycled_to_fill_batches(domains):
    source, _, target = domains
    three_labels = Subset(target, [0, 1, 2])
    model = fresh_model()
    method = get_da_method("ft", **{**FAST, "batch_size": 64})
    history = method.train_round(model, source, three_labels, target, epochs=4, device="cpu", progress=False)
    assert len(history["loss"]) == 4
    assert history["loss"][-1] < history["loss"][0]


def test_endless_batches_cycle_small_sets_evenly():
    batches = iter(EndlessBatchIndices(3, 8, torch.Generator().manual_seed(0)))
    first = next(batches)
    assert len(first) == 8
    assert sorted(Counter(first).values()) in ([2, 3, 3], [3, 2, 3], [2, 3, 3])
    # For a large set the first pass is a permutation: every index once.
    batches = iter(EndlessBatchIndices(10, 5, torch.Generator().manual_seed(0)))
    assert sorted(next(batches) + next(batches)) == list(range(10))


def test_training_restores_the_model_mode(domains):
    model = fresh_model().eval()
    run_round("ft", domains, epochs=1, model=model)
    assert not model.training


# --------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", ["mme", "dann"])
def test_same_seed_gives_same_weights_whatever_the_global_rng(domains, name):
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model, _, _ = run_round(name, domains, epochs=1)
        results.append(weights_of(model))
    assert same_weights(*results)

    other_seed, _, _ = run_round(name, domains, epochs=1, seed=1)
    assert not same_weights(results[0], weights_of(other_seed))


def test_training_leaves_the_global_rng_untouched(domains):
    model = fresh_model()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    run_round("mme", domains, epochs=1, model=model)
    assert torch.equal(torch.rand(3), expected)


def test_unlabeled_target_labels_are_never_used(domains):
    source, target_labeled, target = domains
    scrambled = TensorDataset(target.tensors[0], torch.full_like(target.tensors[1], 999))
    results = []
    for unlabeled in (target, scrambled):
        model, _, _ = run_round("dann", (source, target_labeled, unlabeled), epochs=1)
        results.append(weights_of(model))
    assert same_weights(*results)


def test_dann_resumes_from_checkpoint_exactly(domains):
    source, target_labeled, target = domains

    def train(model, method):
        return method.train_round(model, source, target_labeled, target, epochs=1, device="cpu", progress=False)

    straight_model, straight = fresh_model(), get_da_method("dann", **FAST)
    train(straight_model, straight)
    train(straight_model, straight)

    first_model, first = fresh_model(), get_da_method("dann", **FAST)
    train(first_model, first)
    model_checkpoint, method_checkpoint = weights_of(first_model), copy.deepcopy(first.state_dict())

    resumed_model, resumed = fresh_model(seed=99), get_da_method("dann", **FAST)
    resumed_model.load_state_dict(model_checkpoint)
    resumed.load_state_dict(method_checkpoint)
    train(resumed_model, resumed)
    assert same_weights(weights_of(straight_model), weights_of(resumed_model))


# --------------------------------------------------------------------- discriminators


def test_dann_builds_its_discriminator_without_a_checkpoint(domains):
    source, _, target = domains
    method = get_da_method("dann", **FAST)
    assert isinstance(method, DANN) and method.domain_discriminator is None
    model = fresh_model()
    history = method.adapt_unsupervised(model, source, target, epochs=1, device="cpu", progress=False)
    assert "domain_loss" in history

    discriminator = method.domain_discriminator
    assert isinstance(discriminator, DomainDiscriminator)
    p_target = discriminator(embed_dataset(model, target, "cpu"))
    assert p_target.shape == (len(target),)
    assert ((p_target > 0) & (p_target < 1)).all()

    # The same discriminator carries on into later rounds and survives state_dict.
    method.train_round(model, source, Subset(target, range(4)), target, epochs=1, device="cpu", progress=False)
    assert method.domain_discriminator is discriminator
    restored = get_da_method("dann", **FAST)
    restored.load_state_dict(method.state_dict())
    embeddings = embed_dataset(model, source, "cpu")
    with torch.no_grad():
        assert torch.allclose(restored.domain_discriminator(embeddings), discriminator(embeddings))


def test_non_dann_methods_have_no_discriminator():
    for name in ("ft", "mme", "ent", "mmd"):
        assert get_da_method(name).domain_discriminator is None


def test_train_domain_discriminator_separates_domains_without_touching_the_model(domains):
    source, _, target = domains
    model = fresh_model()
    before = weights_of(model)
    discriminator, history = train_domain_discriminator(
        model, source, target, epochs=8, lr=1e-3, batch_size=16, progress=False
    )
    assert same_weights(before, weights_of(model))
    assert history["loss"][-1] < history["loss"][0]
    with torch.no_grad():
        p_source = discriminator(embed_dataset(model, source, "cpu"))
        p_target = discriminator(embed_dataset(model, target, "cpu"))
    accuracy = ((p_source < 0.5).float().mean() + (p_target > 0.5).float().mean()) / 2
    assert accuracy > 0.9

    again, _ = train_domain_discriminator(model, source, target, epochs=8, lr=1e-3, batch_size=16, progress=False)
    assert same_weights(weights_of(discriminator), weights_of(again))


def test_train_domain_discriminator_rejects_bad_arguments(domains):
    source, _, target = domains
    with pytest.raises(ValueError, match="lr"):
        train_domain_discriminator(fresh_model(), source, target, epochs=1, lr=-1.0)
    with pytest.raises(ValueError, match="epochs"):
        train_domain_discriminator(fresh_model(), source, target, epochs=-1)


# ------------------------------------------------------------- round 0 as the authors ran it


class LearningRateLog:
    """The learning rate of every optimiser step (Adam), in order."""

    def __init__(self, monkeypatch):
        self.rates = []
        original_step = torch.optim.Adam.step

        def logging_step(optimizer, *args, **kwargs):
            self.rates.append(optimizer.param_groups[0]["lr"])
            return original_step(optimizer, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", logging_step)


def test_round_zero_keeps_its_learning_rate_constant(monkeypatch, domains):
    source, _, target = domains
    log = LearningRateLog(monkeypatch)
    # step_size=1 would halve the lr every epoch of a round; round 0 has no schedule.
    method = get_da_method("dann", **{**FAST, "step_size": 1, "gamma": 0.5, "uda_lr": 1e-3})
    method.adapt_unsupervised(fresh_model(), source, target, epochs=3, device="cpu", progress=False)
    assert len(log.rates) == 3 * (96 // 16)
    assert set(log.rates) == {1e-3}


def test_rounds_after_zero_follow_their_step_schedule(monkeypatch, domains):
    source, labeled, target = domains
    log = LearningRateLog(monkeypatch)
    method = get_da_method("dann", **{**FAST, "step_size": 1, "gamma": 0.5, "lr": 1e-3})
    method.train_round(fresh_model(), source, labeled, target, epochs=3, device="cpu", progress=False)
    assert log.rates == [1e-3, 5e-4, 2.5e-4]  # one step per epoch (12 labels, batch 16)


def test_a_round_zero_schedule_can_be_asked_for(monkeypatch, domains):
    source, _, target = domains
    log = LearningRateLog(monkeypatch)
    method = get_da_method("ent", **{**FAST, "uda_step_size": 2, "gamma": 0.5, "uda_lr": 1e-3})
    method.adapt_unsupervised(fresh_model(), source, target, epochs=3, device="cpu", progress=False)
    per_epoch = 96 // 16
    assert log.rates == [1e-3] * 2 * per_epoch + [5e-4] * per_epoch


@pytest.mark.parametrize("name, expected", [
    ("dann", (1.0, 0.1, 0.01)),   # the authors' hard-coded DANN round 0
    ("vada", (1.0, 0.1, 0.01)),
    ("mme", (1.0, 0.7, 0.2)),     # the authors' code applied unsup_wt in MME's round 0
    ("ent", (1.0, 0.7, 0.2)),
])
def test_round_zero_loss_weights_default_per_method(name, expected):
    method = get_da_method(name, unsup_weight=0.7, cent_weight=0.2, src_weight=0.1)
    weights = method.round0_weights()
    assert (weights.src, weights.unsup, weights.cent) == expected


def test_round_zero_loss_weights_come_from_the_config(monkeypatch, domains):
    source, _, target = domains
    method = get_da_method("dann", **{**FAST, "uda_src_weight": 0.5, "uda_unsup_weight": 0.3, "uda_cent_weight": 0.0})
    seen = []
    original = method._train_step
    method._train_step = lambda model, batch, optimizer, weights: seen.append(weights) or original(
        model, batch, optimizer, weights)
    method.adapt_unsupervised(fresh_model(), source, target, epochs=1, device="cpu", progress=False)
    assert seen and all((w.src, w.unsup, w.cent) == (0.5, 0.3, 0.0) for w in seen)
    # The rounds after keep their own weights.
    seen.clear()
    method.train_round(fresh_model(), source, Subset(target, range(12)), target, epochs=1, device="cpu",
                       progress=False)
    assert [(w.src, w.unsup, w.cent) for w in seen] == [(0.1, 1.0, 0.1)]


def test_round_zero_weights_reach_the_loss(domains):
    """With every round-0 weight zero DANN's model does not move; a domain weight alone moves it."""
    source, _, target = domains
    base = dict(FAST, uda_cent_weight=0.0, uda_src_weight=0.0, weight_decay=0.0)
    silent = fresh_model()
    get_da_method("dann", **base, uda_unsup_weight=0.0).adapt_unsupervised(
        silent, source, target, epochs=1, device="cpu", progress=False)
    assert same_weights(weights_of(silent), weights_of(fresh_model()))
    active = fresh_model()
    get_da_method("dann", **base, uda_unsup_weight=0.1).adapt_unsupervised(
        active, source, target, epochs=1, device="cpu", progress=False)
    assert not same_weights(weights_of(active), weights_of(fresh_model()))


# --------------------------------------------------------------------------------- VADA


def test_virtual_adversarial_loss_is_zero_for_a_flat_model_and_positive_for_a_sensitive_one():
    from clue_ext.adapt.vat import virtual_adversarial_loss

    torch.manual_seed(0)
    images = torch.randn(8, 1, 28, 28)
    flat = fresh_model()
    with torch.no_grad():
        for p in flat.parameters():
            p.zero_()
    assert float(virtual_adversarial_loss(flat.train(), images, radius=3.5, xi=1e-6).detach()) == 0.0
    sensitive = fresh_model().train()  # dropout on: the loss must not see its noise
    small = float(virtual_adversarial_loss(sensitive, images, radius=1e-4, xi=1e-6).detach())
    large = float(virtual_adversarial_loss(sensitive, images, radius=3.5, xi=1e-6).detach())
    assert abs(small) < 1e-6 < large
    assert sensitive.training  # the dropout layers are back in training mode
    assert all(m.training for m in sensitive.modules())


def test_vada_trains_a_discriminator_that_aada_can_read(domains):
    _, method, history = run_round("vada", domains, epochs=2)
    assert isinstance(method.domain_discriminator, DomainDiscriminator)
    assert {"vat_source", "vat_target", "domain_loss", "entropy"} <= history.keys()
    assert all(v > 0 for v in history["vat_target"])
