"""Joint pose augmentation: the image and its minutiae move together, and the minutiae map follows."""

from __future__ import annotations

import math

import pytest
import torch

from biobench.data.fingerprints.minutiae_map import minutiae_maps
from biobench.data.fingerprints.pose import PoseAugment, apply_pose, background_fill, random_pose, sample_pose

S = 96  # square test images


def _minutiae(b: int = 2, m: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random valid minutiae at integer positions in the image's middle, zero padding after ``n``."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(20, S - 20, (b, m, 2), generator=g).float()
    rows = torch.cat(
        [xy, torch.rand(b, m, 1, generator=g) * 2 * math.pi, torch.randint(0, 2, (b, m, 1), generator=g)], -1
    )
    n = torch.tensor([m if i % 2 == 0 else m - 4 for i in range(b)])
    rows[torch.arange(m) >= n[:, None]] = 0
    return rows, n


def _dots(rows: torch.Tensor, n: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Images [B, 1, S, S]: 0 background, (2 radius + 1)^2 bright squares at the valid minutiae."""
    img = torch.zeros(rows.shape[0], 1, S, S)
    for i in range(rows.shape[0]):
        for x, y in rows[i, : n[i], :2].long().tolist():
            img[i, 0, y - radius : y + radius + 1, x - radius : x + radius + 1] = 1.0
    return img


def test_image_is_bright_where_the_moved_minutiae_are() -> None:
    rows, n = _minutiae()
    images = _dots(rows, n)
    rotation, shift = torch.tensor([12.0, -9.0]), torch.tensor([[6.0, -4.0], [-7.5, 3.0]])
    out, moved, n2 = apply_pose(images, rows, n, rotation, shift, fill=0.0)
    assert torch.equal(n2, n)  # everything stays in frame
    for i in range(2):
        xy = moved[i, : n[i], :2].round().long()
        assert torch.all(out[i, 0, xy[:, 1], xy[:, 0]] > 0.99)
        # and by the map written out: p' = R (p - c) + c + t with y down (positive = clockwise on screen)
        a = math.radians(rotation[i].item())
        p = rows[i, : n[i], :2] - (S - 1) / 2
        expect = torch.stack(
            [p[:, 0] * math.cos(a) - p[:, 1] * math.sin(a), p[:, 0] * math.sin(a) + p[:, 1] * math.cos(a)], -1
        )
        torch.testing.assert_close(moved[i, : n[i], :2], expect + (S - 1) / 2 + shift[i])
        torch.testing.assert_close(moved[i, : n[i], 2], torch.remainder(rows[i, : n[i], 2] + a, 2 * math.pi))
        torch.testing.assert_close(moved[i, : n[i], 3], rows[i, : n[i], 3])
    assert torch.count_nonzero(moved[1, n[1] :]) == 0


def test_rotation_is_clockwise_on_screen_and_turns_the_direction_with_it() -> None:
    # a bar pointing right (+x) from its minutia; after +90 deg it must point down (+y) in the image array
    img = torch.zeros(1, 1, S, S)
    img[0, 0, 30, 30:40] = 1.0
    rows = torch.tensor([[[30.0, 30.0, 0.0, 0.0]]])
    out, moved, _ = apply_pose(img, rows, torch.tensor([1]), torch.tensor([90.0]), torch.zeros(1, 2), fill=0.0)
    x, y, angle = moved[0, 0, :3].tolist()
    assert moved[0, 0, 2] == pytest.approx(math.pi / 2)
    step = torch.tensor([math.cos(angle), math.sin(angle)]) * 6
    ahead = (torch.tensor([x, y]) + step).round().long()
    assert out[0, 0, ahead[1], ahead[0]] > 0.99  # the bar lies along the rotated direction
    assert out[0, 0, round(y), round(x) + 6] < 0.01


def test_90_degrees_is_rot90_and_positions_are_exact() -> None:
    rows, n = _minutiae()
    images = torch.rand(2, 1, S, S, generator=torch.Generator().manual_seed(1))
    out, moved, n2 = apply_pose(images, rows, n, torch.tensor([90.0, 90.0]), torch.zeros(2, 2), fill=0.0)
    torch.testing.assert_close(out, torch.rot90(images, k=-1, dims=(-2, -1)), atol=1e-5, rtol=0)
    c = (S - 1) / 2
    x, y = rows[..., 0], rows[..., 1]
    for i in range(2):
        k = n[i]
        torch.testing.assert_close(moved[i, :k, 0], c - (y[i, :k] - c), atol=1e-4, rtol=0)
        torch.testing.assert_close(moved[i, :k, 1], c + (x[i, :k] - c), atol=1e-4, rtol=0)
    assert torch.equal(n2, n)
    # with 4 channels (90 degrees apart) the map turns by rot90 and its channels shift by one
    before, after = (minutiae_maps(r, n, (S, S), 48, channels=4) for r in (rows, moved))
    torch.testing.assert_close(after, torch.rot90(before, k=-1, dims=(-2, -1)).roll(1, dims=1), atol=1e-4, rtol=0)


def test_map_of_the_moved_minutiae_is_the_rotated_map() -> None:
    rows, n = _minutiae(seed=3)
    images = _dots(rows, n)
    out, moved, n2 = apply_pose(images, rows, n, torch.tensor([180.0, 180.0]), None, fill=0.0)
    torch.testing.assert_close(out, images.flip(-2, -1), atol=1e-5, rtol=0)  # 180 deg is pixel-exact
    before, after = (minutiae_maps(r, k, (S, S), 64) for r, k in ((rows, n), (moved, n2)))
    torch.testing.assert_close(after, before.flip(-2, -1).roll(3, dims=1), atol=1e-4, rtol=0)


def test_minutiae_pushed_out_of_frame_are_dropped_and_compacted() -> None:
    rows = torch.tensor(
        [[[10.0, 50.0, 1.0, 0.0], [80.0, 50.0, 2.0, 1.0], [30.0, 20.0, 3.0, 0.0], [90.0, 90.0, 0.5, 1.0]]]
    )
    n = torch.tensor([3])  # row 3 is padding, though not zero
    out, moved, n2 = apply_pose(_dots(rows, n), rows, n, None, torch.tensor([[-25.0, 0.0]]), fill=0.0)
    assert n2.tolist() == [2] and n2.dtype == n.dtype
    torch.testing.assert_close(moved[0, :2], torch.tensor([[55.0, 50.0, 2.0, 1.0], [5.0, 20.0, 3.0, 0.0]]))
    assert torch.count_nonzero(moved[0, 2:]) == 0
    assert out[0, 0, 50, 55] == 1.0 and out[0, 0, :, -25:].eq(0).all()


def test_crop_keeps_the_box_and_its_minutiae() -> None:
    rows = torch.tensor([[[10.0, 10.0, 1.0, 0.0], [50.0, 40.0, 2.0, 1.0], [70.0, 40.0, 3.0, 0.0]]])
    images = torch.rand(1, 3, S, S)
    box = torch.tensor([[20, 30, 60, 80]])
    fill = (1.0, -1.0, 0.5)
    out, moved, n2 = apply_pose(images, rows, torch.tensor([3]), None, None, box, fill=fill)
    assert n2.tolist() == [1] and moved[0, 0].tolist() == rows[0, 1].tolist()
    torch.testing.assert_close(out[..., 30:80, 20:60], images[..., 30:80, 20:60])
    for ch, v in enumerate(fill):
        outside = torch.ones(S, S, dtype=torch.bool)
        outside[30:80, 20:60] = False
        assert out[0, ch][outside].eq(v).all()
    _, _, n3 = apply_pose(images, rows, torch.tensor([3]), None, None, box, margin=12.0)
    assert n3.tolist() == [0]  # x = 50 is 9.5 px from the box's right edge


def test_random_pose_no_op_and_reproducible() -> None:
    rows, n = _minutiae()
    images = _dots(rows, n)
    same = random_pose(images, rows, n, max_rotation=0, max_translation=0, crop_prob=0)
    assert all(a is b for a, b in zip(same, (images, rows, n), strict=True))
    kw = {"max_rotation": 15.0, "max_translation": 25.0, "crop_prob": 0.5, "crop_min_keep": 0.5, "fill": 0.0}
    a = random_pose(images, rows, n, generator=torch.Generator().manual_seed(7), **kw)
    b = random_pose(images, rows, n, generator=torch.Generator().manual_seed(7), **kw)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    pose = sample_pose(2, (S, S), generator=torch.Generator().manual_seed(7), crop_prob=0.5, crop_min_keep=0.5)
    ref = apply_pose(images, rows, n, pose.rotation, pose.shift, pose.box, fill=0.0)
    for x, y in zip(a, ref, strict=True):
        assert torch.equal(x, y)


def test_sample_pose_ranges() -> None:
    pose = sample_pose(500, (80, 120), max_rotation=15, max_translation=25, crop_prob=0.3, crop_min_keep=0.5,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert pose.rotation.abs().max() <= 15 and pose.rotation.abs().max() > 14
    assert pose.shift.abs().max() <= 25 and pose.shift.abs().max() > 24
    x0, y0, x1, y1 = pose.box.unbind(1)
    cropped = (x1 - x0 < 120) | (y1 - y0 < 80)
    assert 0.2 < cropped.float().mean() < 0.4
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 120).all() and (y1 <= 80).all()
    assert (x1 - x0 >= 60).all() and (y1 - y0 >= 40).all()


def test_batched_equals_per_sample() -> None:
    rows, n = _minutiae(b=3)
    images = torch.rand(3, 1, S, S)
    rotation, shift = torch.tensor([5.0, -14.0, 30.0]), torch.tensor([[1.5, 2.0], [-20.0, 10.0], [0.0, 40.0]])
    box = torch.tensor([[0, 0, S, S], [10, 5, 70, 90], [0, 0, 50, S]])
    out = apply_pose(images, rows, n, rotation, shift, box, fill=1.0)
    for i in range(3):
        one = apply_pose(images[i : i + 1], rows[i : i + 1], n[i : i + 1], rotation[i : i + 1], shift[i : i + 1],
                         box[i : i + 1], fill=1.0)  # fmt: skip
        for x, y in zip(out, one, strict=True):
            torch.testing.assert_close(x[i : i + 1], y)


def test_pose_augment_on_batch_dicts() -> None:
    rows, n = _minutiae()
    batch = {"image": _dots(rows, n), "minutiae": rows, "n_minutiae": n, "label": torch.tensor([3, 4])}
    assert PoseAugment(0, 0, 0)(batch) is batch
    aug = PoseAugment(max_rotation=15, max_translation=25, fill=0.0)
    assert aug.eval()(batch) is batch  # validation batches pass through
    out = aug.train()(batch, generator=torch.Generator().manual_seed(0))
    assert out is not batch and out["label"] is batch["label"] and batch["image"] is not out["image"]
    assert not torch.equal(out["minutiae"], rows) and (out["n_minutiae"] <= n).all()
    plain = aug({"image": batch["image"]}, generator=torch.Generator().manual_seed(0))
    assert set(plain) == {"image"} and torch.equal(plain["image"], out["image"])
    assert background_fill((0.5,), (0.5,)) == (1.0,) and background_fill((0.2,), (0.4,)) == pytest.approx((2.0,))


def test_rectangular_images_rotate_isotropically() -> None:
    h, w = 64, 112
    rows = torch.tensor([[[20.0, 15.0, 0.0, 0.0], [90.0, 50.0, 1.0, 1.0], [56.0, 40.0, 2.0, 0.0]]])
    img = torch.zeros(1, 1, h, w)
    for x, y in rows[0, :, :2].long().tolist():
        img[0, 0, y - 1 : y + 2, x - 1 : x + 2] = 1.0
    out, moved, n2 = apply_pose(
        img, rows, torch.tensor([3]), torch.tensor([20.0]), torch.tensor([[3.0, -2.0]]), fill=0.0
    )
    assert n2.tolist() == [3]
    xy = moved[0, :, :2].round().long()
    assert torch.all(out[0, 0, xy[:, 1], xy[:, 0]] > 0.99)
    assert out.sum() == pytest.approx(img.sum().item(), rel=0.02)  # a rigid motion keeps the dots' mass


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    rows, n = _minutiae(b=4)
    images = torch.rand(4, 1, S, S)
    kw = {"max_rotation": 15.0, "max_translation": 25.0, "crop_prob": 0.5, "fill": 1.0}
    cpu = random_pose(images, rows, n, generator=torch.Generator().manual_seed(0), **kw)
    gpu = random_pose(images.cuda(), rows.cuda(), n.cuda(), generator=torch.Generator().manual_seed(0), **kw)
    for x, y in zip(cpu, gpu, strict=True):
        assert y.device.type == "cuda"
        torch.testing.assert_close(y.cpu(), x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        minutiae_maps(gpu[1], gpu[2], (S, S), 64).cpu(), minutiae_maps(cpu[1], cpu[2], (S, S), 64), atol=1e-5, rtol=0
    )
