"""Backbones, M3A relation heads and the model builder.

``build_model(cfg, device)`` returns ``M3ANET``: ``model(x)`` maps clips (B, 3, T, H, W) to
(B, NUM_CLASSES); ``model.forward_features(x)`` gives the last feature map (B, C, T', H', W');
``model.pooled_features(x)`` the clip features (B, C); for M3A heads
``model.m3a_head.node_embeddings(features)`` the relation learners' per-layer node embeddings.
"""
from m3a.models.build import MODEL_REGISTRY, build_model

__all__ = ["MODEL_REGISTRY", "build_model"]
from m3a.models import video_resnet  # noqa: E402,F401  (registers M3ANET)
