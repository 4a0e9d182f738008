"""What one proxy model ("expert") leaves behind for the scores: training dynamics and final outputs.

Per sample ``index`` (rows) and training epoch (columns), recorded on the augmented training batches:
``target_prob`` p_y, ``other_max_prob`` max_{k != y} p_k, ``correct`` (argmax == y), ``loss`` (cross-entropy)
and ``sq_norm`` sum_k p_k^2 (so EL2N = sqrt(sq_norm - 2 p_y + 1) needs no full probability vectors).
After training, one eval-mode pass (no augmentation) gives ``probs`` [N, C], penultimate ``features`` [N, D] and,
when the proxy stage is asked for it, the full-parameter per-sample gradient norm ``grad_norm`` [N] (NaN otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DYNAMICS = ("target_prob", "other_max_prob", "correct", "loss", "sq_norm")


@dataclass
class ProxyRecord:
    """Dynamics ``[N, E]`` and final outputs of one proxy model trained on the full training set."""

    labels: np.ndarray  # int64 [N]
    target_prob: np.ndarray  # float16 [N, E]
    other_max_prob: np.ndarray  # float16 [N, E]
    correct: np.ndarray  # bool [N, E]
    loss: np.ndarray  # float16 [N, E]
    sq_norm: np.ndarray  # float16 [N, E]
    probs: np.ndarray  # float32 [N, C], eval mode after training
    features: np.ndarray  # float32 [N, D], eval mode after training
    grad_norm: np.ndarray | None = None  # float64 [N], eval mode after training; NaN / None when not computed

    @property
    def num_epochs(self) -> int:
        return self.target_prob.shape[1]

    def el2n(self, epochs: slice = slice(None)) -> np.ndarray:
        """||softmax - onehot||_2 per sample and epoch ``[N, e]``."""
        p_y = self.target_prob[:, epochs].astype(np.float32)
        return np.sqrt(np.maximum(self.sq_norm[:, epochs].astype(np.float32) - 2 * p_y + 1, 0))
