"""Package list only; everything else is in pyproject.toml.

setuptools cannot discover a package whose folder sits outside its parent's, so the two package-data folders
mapped in pyproject.toml ([tool.setuptools.package-dir]) are named here next to the discovered hf_margin packages.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["hf_margin", "hf_margin.*"]),
        "hf_margin.recipes",
        "hf_margin.model_card_templates",
    ]
)
