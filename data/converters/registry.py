"""The datasets data/prepare.py knows: converter, where the release comes from, its licence and expected layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .common import Report
from .mot import MOT_LAYOUT, convert_crohd, convert_gta_head
from .voc import VOC_LAYOUT, convert_scut_head


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset the converters handle.

    Attributes:
        convert (Callable[..., Report]): converter(src, dst, link=..., **options) -> Report.
        title (str): display name.
        url (str): where to get the raw release.
        licence (str): terms of use, shown when the data is missing.
        layout (str): the raw layout expected, shown when the data is missing or does not match.
    """

    convert: Callable[..., Report]
    title: str
    url: str
    licence: str
    layout: str


CONVERTERS = {
    "scut-head": DatasetInfo(
        convert_scut_head,
        "SCUT-Head",
        "https://github.com/HCIILAB/SCUT-HEAD-Release",
        "free for academic research use only",
        VOC_LAYOUT,
    ),
    "crohd": DatasetInfo(
        convert_crohd,
        "CroHD (MOTChallenge HT21)",
        "https://motchallenge.net/data/Head_Tracking_21/",
        "non-commercial research use only, MOTChallenge terms",
        MOT_LAYOUT,
    ),
    "gta-head": DatasetInfo(
        convert_gta_head,
        "GTA_Head",
        "https://github.com/gkw0010/GTAV_Head-dataset",
        "research use only; synthetic images rendered in GTA V",
        MOT_LAYOUT,
    ),
}


def convert(name: str, src: str | Path, dst: str | Path, **options) -> Report:
    """Convert the raw release of dataset `name` ('scut-head', 'crohd' or 'gta-head') from src into dst.

    Args:
        name (str): a key of CONVERTERS.
        src (str | Path): raw release folder (never modified).
        dst (str | Path): output folder.
        **options: converter options, e.g. link='copy', val_seqs=('HT21-04',).

    Returns:
        (Report): what was converted, dropped and noted.
    """
    if name not in CONVERTERS:
        raise ValueError(f"unknown dataset '{name}', expected one of {', '.join(CONVERTERS)}")
    return CONVERTERS[name].convert(src, dst, **options)
