"""Data preparation: Mini M-MiT, audio extraction, VGGish, audio/text lexicons, demo data."""
