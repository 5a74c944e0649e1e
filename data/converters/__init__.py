"""Converters from the raw releases of GTA_Head, SCUT-Head and CroHD (HT21) to Ultralytics' YOLO layout."""

from __future__ import annotations

from .common import CONVERTER_VERSION, DatasetLayoutError, Report
from .ensure import ensure_dataset, ensure_from_ultralytics
from .mot import convert_crohd, convert_gta_head
from .registry import CONVERTERS, convert
from .voc import convert_scut_head

__all__ = (
    "CONVERTERS",
    "CONVERTER_VERSION",
    "DatasetLayoutError",
    "Report",
    "convert",
    "convert_crohd",
    "convert_gta_head",
    "convert_scut_head",
    "ensure_dataset",
    "ensure_from_ultralytics",
)
