"""Rate-recognition comparison of the learned IPR codec against the classic baselines on one test split.

The test split of a Hydra data config (overrides of ``conf/eval.yaml``, first on the command line) is round-tripped
through each baseline codec over its quality sweep and scored by a recognizer: decoded probes against the
uncompressed gallery (``--recognizer``: an embedder checkpoint; TAR@FAR, EER, rank-1), a classifier's accuracy on
decoded images (``--classifier``: its logits), or the composed config's own ``recognizer`` group scored by its
``model.evaluation`` (``--config-recognizer``, e.g. ``experiment=ipr_faces``: dlib's face descriptor). Learned codecs
are read from the ``metrics.json`` of tested IPR-codec runs (``--learned``: one curve per directory, one point per
finished run below it), never re-run; they must have been tested on the same data with the same recognizer (a
mismatch of their ``test/ref_*`` is noted). Writes ``points.csv``, ``headline.md`` (parity bpp, ratios to HEVC CRF 23
and to VVC's parity, BD-rates vs HEVC) and ``rate_recognition.png`` under ``--out``. Baseline points are cached under
``<paths.cache_dir>/rate_recognition`` by content, so a re-run with another learned run does not redo them.

    python scripts/rate_recognition.py data=fingerprints data.task=finger data.mean=[0] data.std=[1] \\
        --recognizer <fp_cnn run>/checkpoints/best.ckpt --learned outputs/ipr_fingerprint/runs/<time> --out <dir>
    python scripts/rate_recognition.py experiment=ipr_faces data.data_dir=<faces> --config-recognizer \\
        --learned <ipr_faces run> <ipr_faces_rd run> --out <dir>
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from biobench import CONFIG_DIR
from biobench.contracts import DataModule, DataSpec, Recognizer
from biobench.metrics.compression import available_codecs, get_codec
from biobench.metrics.compression.decoded import COMPLETE, to_uint8, write_identity_folder
from biobench.metrics.compression.rate_recognition import (
    Scorer,
    cached_baseline,
    classification_scorer,
    unsupported,
    verification_scorer,
)
from biobench.metrics.registry import metric_mode
from biobench.recognizers import build_recognizer, classifier_recognizer, embedder_recognizer
from biobench.results.rate_recognition import (
    ANCHOR_CRF,
    learned_curve,
    reference_mismatches,
    write_rate_recognition,
)
from biobench.utils.hashing import content_hash

LABELS = ("identity", "finger", "impression", "index", "label")  # identity: faces; finger: fingerprints


def compose_eval(overrides: Sequence[str]) -> DictConfig:
    """``conf/eval.yaml`` + ``overrides``, paths rooted at the working directory (as on the command line)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="eval", overrides=[f"paths.root_dir={os.getcwd()}", *overrides])


def test_samples(datamodule: DataModule, max_images: int | None) -> dict[str, torch.Tensor]:
    """The first ``max_images`` test samples (all by default): ``image`` in [0, 1] and the labels they carry."""
    datamodule.setup("test")
    batches: list[dict[str, torch.Tensor]] = []
    for batch in datamodule.test_dataloader():
        batches.append({"image": datamodule.spec.to_unit(batch["image"]).clamp(0, 1),
                        **{k: batch[k] for k in LABELS if k in batch}})  # fmt: skip
        if max_images is not None and sum(len(b["image"]) for b in batches) >= max_images:
            break
    return {k: torch.cat([b[k] for b in batches])[:max_images] for k in batches[0]}


class LoadedRecognizer(NamedTuple):
    """A recognizer, how it scores (``verification`` / ``classification``), its name, and the content hash of
    what its embeddings depend on (its file, or its resolved config and file), which keys the cached points."""

    recognizer: Recognizer
    evaluation: str
    name: str
    key: str


def load_recognizer(args: argparse.Namespace, cfg: DictConfig, spec: DataSpec) -> LoadedRecognizer:
    """The recognizer of images served by ``spec`` from ``--classifier`` (its logits: classification),
    ``--recognizer`` (an embedder: verification) or ``--config-recognizer`` (the composed ``recognizer`` group,
    scored by the config's ``model.evaluation``)."""
    if args.classifier is not None:
        recognizer = classifier_recognizer(args.classifier, spec, output="logits")
        return LoadedRecognizer(recognizer, "classification", args.classifier.name,
                                content_hash(args.classifier.read_bytes()))  # fmt: skip
    if args.recognizer is not None:
        recognizer = embedder_recognizer(args.recognizer, spec)
        return LoadedRecognizer(recognizer, "verification", args.recognizer.name,
                                content_hash(args.recognizer.read_bytes()))  # fmt: skip
    if cfg.get("recognizer") is None:
        raise SystemExit("--config-recognizer needs a recognizer group in the composed config (e.g. "
                         "experiment=ipr_faces, or recognizer=embedder recognizer.path=<ckpt>).")  # fmt: skip
    settings = OmegaConf.to_container(cfg.recognizer, resolve=True)
    path = Path(settings.get("path") or "")
    key = content_hash(settings, path.read_bytes() if path.is_file() else None)
    evaluation = cfg.model.get("evaluation", "verification")
    return LoadedRecognizer(build_recognizer(instantiate(cfg.recognizer), spec), evaluation,
                            settings["_target_"].rsplit(".", 1)[-1], key)  # fmt: skip


def build_scorer(
    recognizer: Recognizer, evaluation: str, samples: dict[str, torch.Tensor], args: argparse.Namespace
) -> Scorer:
    """The scorer of decoded images by ``evaluation`` (``verification`` or ``classification``)."""
    if evaluation == "classification":
        return classification_scorer(recognizer, samples["image"], samples["label"])
    identity = samples.get("identity", samples.get("finger"))
    if evaluation != "verification" or identity is None or "impression" not in samples:
        raise SystemExit(f"Scoring by {evaluation} needs verification samples labelled by identity (identity or "
                         "finger) and impression (data=fingerprints data.task=finger, data=faces), or a classifier "
                         "(--classifier).")  # fmt: skip
    labels = (identity, samples["impression"], samples["index"])
    return verification_scorer(recognizer, samples["image"], *labels, fars=args.fars, impostors=args.impostors)


def codec_values(text: str, flag: str, sep: str, form: str) -> tuple[str, tuple[float, ...]]:
    """``CODEC<sep>V1,V2,...`` of ``flag`` as ``(codec, values)``; an error names the flag and its ``form``."""
    name, _, values = text.partition(sep)
    if name not in available_codecs() or not values:
        raise SystemExit(f"{flag} {text}: expected {form} with CODEC one of {available_codecs()}.")
    try:
        return name, tuple(float(v) for v in values.split(","))
    except ValueError:
        raise SystemExit(f"{flag} {text}: '{values}' is not a number or comma-separated numbers.") from None


def quality_sweep(text: str) -> tuple[str, tuple[float, ...]]:
    """``CODEC=Q1,Q2,...`` of ``--qualities``; CRF 23 joins any HEVC sweep (the headline's anchor)."""
    name, qualities = codec_values(text, "--qualities", "=", "CODEC=Q1,Q2,...")
    return name, (*qualities, ANCHOR_CRF) if name == "hevc" and ANCHOR_CRF not in qualities else qualities


def decoded_setting(text: str) -> tuple[str, float]:
    """``CODEC:QUALITY`` of ``--save-decoded`` as ``(codec, quality)``."""
    name, values = codec_values(text, "--save-decoded", ":", "CODEC:QUALITY")
    if len(values) != 1:
        raise SystemExit(f"--save-decoded {text}: one quality per setting (repeat the flag's value for more).")
    return name, values[0]


def save_decoded(samples: dict[str, torch.Tensor], settings: Sequence[tuple[str, float]], out: Path,
                 workers: int) -> None:  # fmt: skip
    """The test images decoded by each ``(codec, quality)``, and the originals, as identity folders under ``out``
    (``<codec>_<quality>/``, ``original/``; a finished folder is kept, never rewritten)."""
    identity = samples.get("identity", samples.get("finger"))
    if identity is None or "impression" not in samples:
        raise SystemExit("--save-decoded needs samples labelled by identity (or finger) and impression.")
    labels = (identity.tolist(), samples["impression"].tolist())
    arrays = to_uint8(samples["image"])
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for folder, setting in [("original", None), *((f"{n}_{q:g}", (n, q)) for n, q in settings)]:
            if (out / folder / COMPLETE).is_file():
                print(f"kept {out / folder} (written before)")
                continue
            decoded = arrays
            if setting is not None:
                codec, quality = get_codec(setting[0]), setting[1]
                decoded = [image for image, _ in pool.map(lambda a, c=codec, q=quality: c.roundtrip(a, q), arrays)]
            print("wrote", write_identity_folder(out / folder, decoded, *labels))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/eval.yaml selecting the data")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--recognizer", type=Path, help="an embedder checkpoint (verification)")
    which.add_argument("--classifier", type=Path, help="a classifier checkpoint (accuracy of its logits)")
    which.add_argument("--config-recognizer", action="store_true",
                       help="the composed config's recognizer, e.g. experiment=ipr_faces (dlib)")  # fmt: skip
    parser.add_argument("--codecs", nargs="+", default=list(available_codecs()), choices=available_codecs())
    parser.add_argument("--qualities", nargs="*", default=[], metavar="CODEC=Q1,Q2,...",
                        help="another sweep for a codec than its default, e.g. hevc=51,47,43,38,33,28,23 for lower "
                             "rates (the knob as the codec takes it: CRF, QP, quality, ...)")  # fmt: skip
    parser.add_argument("--learned", nargs="*", type=Path, default=[], help="IPR-codec run (or sweep) directories")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--metric", default=None, help="headline metric (default tar@far=1e-3, or acc)")
    parser.add_argument("--tolerance", type=float, default=0.005, help="parity tolerance in raw units (0.005 = 0.5 %%)")
    parser.add_argument("--fars", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    parser.add_argument("--impostors", choices=("all", "fvc"), default="all")
    parser.add_argument("--workers", type=int, default=1, help="threads round-tripping images")
    parser.add_argument("--no-cache", action="store_true", help="recompute the baseline points")
    parser.add_argument("--save-decoded", nargs="*", default=[], metavar="CODEC:QUALITY",
                        help="also write these settings' decoded test images (and the originals) as identity folders "
                             "under <out>/decoded/, for scorers of images such as Bozorth3")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    curves = [learned_curve(d) for d in args.learned]  # first: a bad directory fails before any work
    settings = [decoded_setting(s) for s in args.save_decoded]
    sweeps = dict(quality_sweep(q) for q in args.qualities)
    cfg = compose_eval(args.overrides)
    datamodule = instantiate(cfg.data)
    samples = test_samples(datamodule, args.max_images)
    unit = replace(datamodule.spec, mean=(0.0,), std=(1.0,))  # the recognizer gets the [0, 1] pixels codecs decode
    loaded = load_recognizer(args, cfg, unit)
    metric = args.metric or ("acc" if loaded.evaluation == "classification" else "tar@far=1e-3")
    for curve in curves:
        lacking = [p["run"] for p in curve.points if metric not in p]
        if lacking:
            raise SystemExit(f"Learned run {lacking[0]} has no test/{metric}: it was tested with another evaluation.")
    scorer = build_scorer(loaded.recognizer, loaded.evaluation, samples, args)
    if metric not in scorer.reference:
        raise SystemExit(f"--metric {metric} is not one of the scorer's metrics {sorted(scorer.reference)}.")
    cache = None if args.no_cache else Path(cfg.paths.cache_dir) / "rate_recognition"
    images, points, skipped = samples["image"], {}, []
    for name in args.codecs:
        try:
            codec = get_codec(name)
        except (ImportError, RuntimeError) as err:
            skipped.append(f"not run: {name} ({err})")
            continue
        reason = unsupported(codec, images)
        if reason is not None:
            skipped.append(f"not run: {reason}.")
            continue
        qualities = sweeps.get(name, codec.qualities)
        points[name] = cached_baseline(codec, qualities, images, scorer, cache, (loaded.key,), args.workers)
    if settings:
        save_decoded(samples, settings, args.out / "decoded", args.workers)
    points.update({curve.label: curve.points for curve in curves})
    reference = scorer.reference[metric]
    protocol = "".join(f", {k} {v:g}" for k, v in scorer.reference.items() if k.endswith("_pairs"))
    data = f"{len(images)} test images {tuple(images.shape[1:])}, data hash {datamodule.data_hash()}"
    notes = [f"{data}, recognizer {loaded.name} ({loaded.key}), {loaded.evaluation}{protocol}", *skipped,
             *reference_mismatches(curves, metric, reference)]  # fmt: skip
    higher_is_better = metric_mode(metric, default="max") == "max"
    labels = [c.label for c in curves]
    paths = write_rate_recognition(args.out, points, metric, reference, args.tolerance, higher_is_better, labels, notes)
    print((args.out / "headline.md").read_text())
    print("wrote", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
