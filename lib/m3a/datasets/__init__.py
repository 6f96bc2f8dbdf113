"""Video lists, lexicons, decoding, transforms, datasets and loaders."""
