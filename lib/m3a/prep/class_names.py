"""Reading category-name files: one name per line, in label order."""
from typing import List


def read_class_names(path: str) -> List[str]:
    """Names from ``path`` (blank lines skipped); a trailing ``,index`` / `` index`` is dropped.

    M-MiT ships ``moments_categories.txt`` as ``name,index`` lines; plain one-name-per-line files
    (``categories-{VERSION}.txt``) read the same. Raises ValueError for duplicate names.
    """
    try:
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        raise FileNotFoundError(f"class-name file not found: {path}") from None
    names = []
    for line in lines:
        head, sep, tail = line.rpartition(",")
        names.append(head.strip() if sep and head.strip() and tail.strip().isdigit() else line)
    seen = set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise ValueError(f"{path}:{number}: duplicate class name '{name}'")
        seen.add(name)
    return names
