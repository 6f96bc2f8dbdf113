"""Training and testing loops, losses, optimisers and LR policies."""
