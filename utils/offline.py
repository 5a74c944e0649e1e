"""Keep Ultralytics off the network: give it the fonts it would otherwise download on first plot."""

from __future__ import annotations

import shutil
from pathlib import Path

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")  # what Ultralytics' check_font looks for before downloading


def provide_fonts() -> list[Path]:
    """Copy matplotlib's bundled DejaVu Sans into Ultralytics' config folder under the names it looks for.

    Ultralytics' `check_font` (called by `check_det_dataset` and by its image plots) returns a font found in its
    config folder and only downloads one when none is there, so a local copy makes every plot offline.

    Returns:
        (list[Path]): The font files now present.
    """
    import matplotlib
    from ultralytics.utils import USER_CONFIG_DIR

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    files = []
    for name in FONT_NAMES:
        target = Path(USER_CONFIG_DIR) / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        files.append(target)
    return files
