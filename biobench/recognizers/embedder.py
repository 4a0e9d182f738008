"""A biobench fingerprint-embedder checkpoint (``model=vit_embedder`` / ``cnn_embedder``) as a Recognizer.

The embedding network (backbone + projection; not the loss's class centres, not the minutiae head) is rebuilt from
the checkpoint's hyperparameters and weights (weights_only). Input size, channels and normalisation are those of
the data it was trained on (the checkpoint's ``data_spec``), so it can score images served at another size or range.
"""

from __future__ import annotations

from pathlib import Path

from biobench.contracts import DataSpec
from biobench.models.nets.embedding import EMBEDDER_SYSTEM, EmbeddingNet, build_embedding_net
from biobench.models.nets.loading import TRAINING_SPEC_KEY, load_net_state
from biobench.recognizers.frozen import FrozenRecognizer
from biobench.utils.checkpoint import read_checkpoint


def load_embedding_net(path: str | Path) -> tuple[EmbeddingNet, dict]:
    """The embedding network of embedder checkpoint ``path`` (eval mode, frozen) and the checkpoint."""
    ckpt = read_checkpoint(path)
    if ckpt.get("system") != EMBEDDER_SYSTEM:
        found = ckpt.get("system") or "no 'system' entry (e.g. a classifier's)"
        raise ValueError(
            f"Checkpoint '{path}' is not a fingerprint embedder's ({found}): give a model=vit_embedder / "
            "cnn_embedder run's checkpoint, or use recognizer=classifier for a classifier."
        )
    hp = ckpt["hyper_parameters"]
    net_cfg = {k: v for k, v in hp["net"].items() if k != "pretrained_path"}  # the weights come from the checkpoint
    net = build_embedding_net(net_cfg, hp["in_chans"], hp["embedding_dim"])
    load_net_state(net, ckpt, path)
    return net.eval().requires_grad_(False), ckpt


def embedder_recognizer(path: str | Path, spec: DataSpec) -> FrozenRecognizer:
    """The embedding of embedder checkpoint ``path`` as a Recognizer of images served by ``spec``."""
    net, ckpt = load_embedding_net(path)
    trained = ckpt.get(TRAINING_SPEC_KEY)
    if not trained:
        raise ValueError(f"Embedder checkpoint '{path}' does not record its training data ('{TRAINING_SPEC_KEY}').")
    hp = ckpt["hyper_parameters"]
    return FrozenRecognizer(net, spec, hp["in_chans"], trained["mean"], trained["std"], trained["image_size"])
