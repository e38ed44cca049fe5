"""Data sets: a catalogue with checksums, resolution and download, and readers.

``resolve(name)`` returns the verified folder of a catalogue data set (see
:mod:`dlnd.data.fetch` for where it looks); :mod:`dlnd.data.readers` turns the files into arrays.
"""

from dlnd.data.catalog import DATASETS, Dataset, get_dataset
from dlnd.data.fetch import resolve

__all__ = ["DATASETS", "Dataset", "get_dataset", "resolve"]
