"""Grad-CAM, t-SNE of relation-learner embeddings, per-class AP boost plots."""
