"""Model components behind registries and the builder that composes them.

``build_model(cfg, device)`` returns the composition ``MODEL.MODEL_NAME`` (default ``M3ANET``,
:class:`m3a.models.recognizer.Recognizer`): ``model(x)`` maps clips (B, 3, T, H, W) to
(B, NUM_CLASSES); ``model.forward_features(x)`` gives the backbone's features,
``model.pooled_features(x)`` the clip features (B, C), ``model.gradcam_layer()`` the module
Grad-CAM hooks and, for M3A heads, ``model.node_embeddings(features)`` the relation learners'
per-layer node embeddings.

Importing this package imports every module under it, so each family registers itself: a new
family is one file here, with no edit anywhere else.
"""
import importlib
import pkgutil

from m3a.models.build import (
    BACKBONE_REGISTRY,
    HEAD_REGISTRY,
    MODEL_REGISTRY,
    NECK_REGISTRY,
    build_model,
)

for _module in pkgutil.walk_packages(__path__, __name__ + "."):
    importlib.import_module(_module.name)

__all__ = ["BACKBONE_REGISTRY", "HEAD_REGISTRY", "MODEL_REGISTRY", "NECK_REGISTRY", "build_model"]
