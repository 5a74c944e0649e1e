"""Check that a source image can be used before a converter links it into a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

JPEG_END = b"\xff\xd9"  # end-of-image marker


@dataclass(frozen=True)
class ImageCheck:
    """What a converter needs to know about one source image.

    Attributes:
        size (tuple[int, int] | None): Width and height, None when the image is unusable.
        problem (str | None): Why it is unusable, for a one-line message.
    """

    size: tuple[int, int] | None
    problem: str | None = None


def check_image(path: Path) -> ImageCheck:
    """Read an image's header (and, for a JPEG without its end marker, decode it) to say whether it is usable.

    A JPEG that decodes despite bytes after its end marker is usable: Ultralytics' dataset check re-saves it in the
    converted folder (a new file replaces the link there), never in the source.

    Args:
        path (Path): Source image.

    Returns:
        (ImageCheck): Size, or the reason it cannot be used.
    """
    try:
        if path.stat().st_size == 0:
            return ImageCheck(None, "empty file (0 bytes)")
        with Image.open(path) as im:
            size, fmt = im.size, im.format
    except Image.UnidentifiedImageError:
        return ImageCheck(None, "not an image format PIL can identify (wrong extension, or not an image)")
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError...; no bad file may stop a conversion
        return ImageCheck(None, f"unreadable image ({type(e).__name__}: {e})")
    if min(size) <= 0:
        return ImageCheck(None, f"image declares a {size[0]}x{size[1]} size")
    if fmt == "JPEG" and not _ends_with(path, JPEG_END):
        try:
            with Image.open(path) as im:
                im.load()  # a truncated JPEG fails here; one with bytes after its end marker decodes
        except Exception as e:
            return ImageCheck(None, f"truncated or corrupt JPEG ({type(e).__name__}: {e})")
    return ImageCheck(size)


def _ends_with(path: Path, marker: bytes) -> bool:
    """Whether the file's last bytes are `marker`."""
    with open(path, "rb") as f:
        f.seek(-len(marker), 2)
        return f.read() == marker
