"""Recognizers (DESIGN.md, Recognizer contract): frozen networks with ``embed(images) -> [N, D]``, L2-normalised,
differentiable with respect to the images, each owning its resize and normalisation.

Factories (``conf/recognizer/``; each takes the served :class:`~biobench.contracts.DataSpec` as ``spec``):
:func:`classifier_recognizer` (a biobench classifier checkpoint's penultimate features), :func:`torchscript_recognizer`
(a local TorchScript file), :func:`timm_recognizer` (a timm architecture with local weights),
:func:`embedder_recognizer` (a fingerprint-embedder checkpoint), :func:`fusion_recognizer` (two of them fused at
score level) and :func:`dlib_face_recognizer` (dlib's ResNet face descriptor, ported to torch, on aligned chips;
:class:`FaceAligner` cuts them from photos). :func:`build_recognizer` turns a config's result (a Recognizer, or a
factory still missing ``spec``) into a Recognizer.
"""

from __future__ import annotations

from biobench.recognizers.build import build_recognizer
from biobench.recognizers.classifier import PenultimateFeatures, classifier_recognizer
from biobench.recognizers.dlib_face import DlibFaceRecognizer, FaceAligner, dlib_face_recognizer, load_dlib_face_net
from biobench.recognizers.embedder import embedder_recognizer, load_embedding_net
from biobench.recognizers.external import load_timm, load_torchscript, timm_recognizer, torchscript_recognizer
from biobench.recognizers.frozen import FrozenRecognizer, convert_channels
from biobench.recognizers.fusion import FusedRecognizer, fusion_recognizer

__all__ = [
    "DlibFaceRecognizer",
    "FaceAligner",
    "FrozenRecognizer",
    "FusedRecognizer",
    "PenultimateFeatures",
    "build_recognizer",
    "classifier_recognizer",
    "convert_channels",
    "dlib_face_recognizer",
    "embedder_recognizer",
    "fusion_recognizer",
    "load_dlib_face_net",
    "load_embedding_net",
    "load_timm",
    "load_torchscript",
    "timm_recognizer",
    "torchscript_recognizer",
]
