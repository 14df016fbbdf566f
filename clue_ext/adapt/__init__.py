"""Learning strategies of the Active DA loop: how the model is updated between rounds.

``get_da_method(name, **hparams)`` builds one of :func:`available_da_methods`
(``ft``, ``mme``, ``dann``, ``vada``, ``ent``, ``mmd``); every method offers
``adapt_unsupervised`` (round 0), ``train_round`` (after each acquisition),
``domain_discriminator`` and ``state_dict`` / ``load_state_dict``.
:func:`train_domain_discriminator` trains a discriminator for AADA when the
learning strategy is not DANN.
"""

from .base import DAMethod, LossWeights
from .dann import DANN
from .discriminator import DomainDiscriminator, train_domain_discriminator
from .embedding import embed_dataset
from .ent import EntropyMinimization
from .ft import FineTune
from .grad_reverse import GradientReversal, grad_reverse
from .hparams import DAHyperParams
from .losses import entropy_from_logits, gaussian_mmd
from .mmd import MMD
from .mme import MME
from .registry import available_da_methods, get_da_method
from .vada import VADA

__all__ = [
    "DANN",
    "DAHyperParams",
    "DAMethod",
    "DomainDiscriminator",
    "EntropyMinimization",
    "FineTune",
    "GradientReversal",
    "LossWeights",
    "MMD",
    "MME",
    "VADA",
    "available_da_methods",
    "embed_dataset",
    "entropy_from_logits",
    "gaussian_mmd",
    "get_da_method",
    "grad_reverse",
    "train_domain_discriminator",
]
