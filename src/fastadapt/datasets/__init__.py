"""Custom Kedro datasets: the only modules below `pipelines` that know Kedro."""

from fastadapt.datasets.atomic import AtomicDataset, AtomicFolderDataset
from fastadapt.datasets.model_directory import ModelDirectoryDataset
from fastadapt.datasets.raw_folder import RawFolderDataset
from fastadapt.datasets.skops_file import SkopsDataset

__all__ = ["AtomicDataset", "AtomicFolderDataset", "ModelDirectoryDataset", "RawFolderDataset", "SkopsDataset"]
