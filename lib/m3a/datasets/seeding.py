"""Seeds derived from several integers (run seed, epoch, item index) for reproducible sampling."""
import numpy as np


def derived_seed(*keys: int) -> int:
    """A 32-bit seed that depends on every one of ``keys`` (e.g. seed, epoch, index)."""
    return int(np.random.SeedSequence([int(k) % 2**63 for k in keys]).generate_state(1)[0])
