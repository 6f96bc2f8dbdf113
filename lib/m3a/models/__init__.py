"""Model components behind registries and the builder that composes them.

``build_model(cfg, device)`` returns the composition ``MODEL.MODEL_NAME`` (default ``M3ANET``,
:class:`m3a.models.recognizer.Recognizer`): ``model(x)`` maps clips (B, 3, T, H, W) to
(B, NUM_CLASSES); ``model.forward_features(x)`` gives the backbone's features,
``model.pooled_features(x)`` the clip features (B, C), ``model.gradcam_layer()`` the module
Grad-CAM hooks and, for M3A heads, ``model.node_embeddings(features)`` the relation learners'
per-layer node embeddings. Importing this package registers every family.
"""
from m3a.models.build import (
    BACKBONE_REGISTRY,
    HEAD_REGISTRY,
    MODEL_REGISTRY,
    NECK_REGISTRY,
    build_model,
)
from m3a.models import heads, m3a_head, necks, recognizer, video_resnet  # noqa: F401,E402 (register)
from m3a.models import action_resnet, tsn_head  # noqa: F401,E402 (register)
from m3a.models import m2clip, m2clip_head  # noqa: F401,E402 (register)
from m3a.models import epam_net, i3d_head  # noqa: F401,E402 (register)

__all__ = ["BACKBONE_REGISTRY", "HEAD_REGISTRY", "MODEL_REGISTRY", "NECK_REGISTRY", "build_model"]
