"""Installs the m3a package from lib/ (``pip install -e .[test]``)."""
from setuptools import find_packages, setup

setup(
    name="m3a",
    version="0.1.0",
    description="Multi-modal multi-action video recognition with relation learners (GCN/transformer)",
    # torch 2.13.0 (pinned by the Makefile) publishes wheels for CPython 3.10 to 3.14 only.
    python_requires=">=3.10",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    # CLIP's BPE merges (MIT licence, notice in BPE_LICENSE.txt) ship with the package.
    package_data={"m3a.models.clip": ["bpe_simple_vocab_16e6.txt.gz", "BPE_LICENSE.txt"]},
    install_requires=[
        "torch>=2.0",
        "fvcore",
        "iopath",
        "av>=17",
        "simplejson",
        "numpy",
        "scikit-learn",
        "scipy",
        "tensorboard",
        "tqdm",
        "psutil",
        "pyyaml",
        "matplotlib",
        "pillow",
        "threadpoolctl",
        "regex",  # CLIP's tokenizer: Unicode letter/number classes
        "ftfy",  # CLIP's tokenizer: the same text clean-up as OpenAI's
    ],
    extras_require={
        "test": ["pytest", "pytest-timeout", "transformers", "sentence-transformers"],
        "vision": ["torchvision"],
        "text": ["transformers", "sentence-transformers"],
        # Other decoders that `tools/benchmark.py data` measures side by side with ours.
        "bench": ["torchcodec", "decord"],
    },
)
