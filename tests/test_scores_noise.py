"""Score directions on real training dynamics: with a share of digits' training labels flipped, the flipped samples
must rank among the hardest under the scores that claim to find them (a higher score = harder). This catches a
broken sign or a wrong column whether or not a proxy happens to err on a given sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from sklearn.metrics import roc_auc_score

NOISE = 0.2
SCORES = ["el2n", "aum", "forgetting", "sim"]


@pytest.fixture(scope="module")
def proxy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the proxies are trained once and shared by every score."""
    return tmp_path_factory.mktemp("noise_cache")


@pytest.mark.parametrize("score", SCORES)
def test_flipped_labels_rank_among_the_hardest(score: str, compose_train, proxy_cache: Path) -> None:
    cfg = compose_train(
        "experiment=prune_digits",
        f"data.label_noise={NOISE}",
        f"pruning/score={score}",
        "pruning.keep_ratio=0.5",
        "pruning.proxy.num_experts=2",
        "pruning.proxy.epochs=6",
        f"paths.cache_dir={proxy_cache}",
    )
    datamodule = instantiate(cfg.data)
    scores, _ = instantiate(cfg.pruning).scores(datamodule)
    noisy = np.zeros(len(scores), dtype=bool)
    noisy[datamodule.noisy_indices] = True
    assert noisy.mean() == pytest.approx(NOISE, abs=0.01)
    auroc = roc_auc_score(noisy, scores)  # 0.5 = blind, 0 = the direction is reversed
    hardest = np.argsort(-scores, kind="stable")[: noisy.sum()]  # measured: AUROC >= 0.99, precision >= 0.98
    precision = noisy[hardest].mean()  # share of flipped samples among the |flipped| hardest
    assert auroc > 0.95, f"{score}: AUROC {auroc:.3f} of flipped vs clean samples"
    assert precision > 0.85, f"{score}: {precision:.2f} of the hardest samples are the flipped ones"
