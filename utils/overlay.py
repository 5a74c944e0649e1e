"""Draw counting overlays with OpenCV only: boxes, a dot per head, or a density heatmap, and the count in a corner.

Everything here uses cv2's Hershey fonts, never Ultralytics' Annotator: its PIL path calls `check_font`, which
downloads Arial.ttf when the font is missing, and the counter must run offline.
"""

from __future__ import annotations

import cv2
import numpy as np
from ultralytics.utils.plotting import colors

STYLES = ("boxes", "points", "heatmap")
FONT = cv2.FONT_HERSHEY_SIMPLEX


def auto_line_width(shape: tuple[int, ...]) -> int:
    """Return a line width of about 0.2% of the mean image side, at least 1 px (thin lines keep crowds readable)."""
    return max(1, round(0.002 * (shape[0] + shape[1]) / 2))


def head_size(boxes: np.ndarray, default: float = 8.0) -> float:
    """Return the median of the boxes' shorter sides in pixels, `default` when there are no boxes."""
    return float(np.median(np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))) if len(boxes) else default


def centres(boxes: np.ndarray) -> np.ndarray:
    """Return the centres (N, 2) x, y of boxes (N, 4) x1, y1, x2, y2."""
    return (boxes[:, :2] + boxes[:, 2:4]) / 2


def draw_boxes(
    im: np.ndarray,
    boxes: np.ndarray,
    cls: np.ndarray,
    thickness: int,
    labels: list[str] | None = None,
) -> np.ndarray:
    """Draw boxes in place, coloured by class, with optional text labels above them.

    Args:
        im (np.ndarray): BGR image, modified in place.
        boxes (np.ndarray): Boxes (N, 4) x1, y1, x2, y2 in pixels.
        cls (np.ndarray): Class index (N,) of each box.
        thickness (int): Line width in pixels.
        labels (list[str], optional): One text per box; None draws no text.

    Returns:
        (np.ndarray): The same image.
    """
    corners = boxes[:, [[0, 1], [2, 1], [2, 3], [0, 3]]].round().astype(np.int32)  # (N, 4, 2) polygons
    for c in np.unique(cls).astype(int):  # one polylines call per class, not per box
        cv2.polylines(im, corners[cls == c], True, colors(c, bgr=True), thickness, cv2.LINE_AA)
    if labels:
        scale, tf = max(0.3, thickness / 5), max(thickness // 2, 1)  # small text: crowds have small boxes
        for (x, y), text, c in zip(corners[:, 0], labels, cls.astype(int)):  # cv2 draws one string per call
            (tw, th), _ = cv2.getTextSize(text, FONT, scale, tf)
            y = y if y - th - 3 >= 0 else y + th + 3  # keep the label inside the image
            cv2.rectangle(im, (int(x), int(y) - th - 3), (int(x) + tw, int(y)), colors(c, bgr=True), -1)
            cv2.putText(im, text, (int(x), int(y) - 2), FONT, scale, (255, 255, 255), tf, cv2.LINE_AA)
    return im


def draw_points(
    im: np.ndarray, points: np.ndarray, radius: int, color: tuple[int, int, int] = (0, 0, 255)
) -> np.ndarray:
    """Draw a dot with a dark rim at each point in place; dilating a point mask keeps it one call for any crowd.

    Args:
        im (np.ndarray): BGR image, modified in place.
        points (np.ndarray): Points (N, 2) x, y in pixels.
        radius (int): Dot radius in pixels.
        color (tuple[int, int, int]): BGR dot colour.

    Returns:
        (np.ndarray): The same image.
    """
    h, w = im.shape[:2]
    seeds = np.zeros((h, w), np.uint8)
    xy = np.clip(np.round(points).astype(np.int64), 0, [w - 1, h - 1])
    seeds[xy[:, 1], xy[:, 0]] = 1
    rim, dot = (cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)) for r in (radius + 1, radius))
    im[cv2.dilate(seeds, rim) > 0] = 0  # dark rim keeps dots readable on light and dark backgrounds
    im[cv2.dilate(seeds, dot) > 0] = color
    return im


def density_map(shape: tuple[int, int], points: np.ndarray, sigma: float) -> np.ndarray:
    """Return a Gaussian density of the points: each point spreads a unit mass, so the map sums to the count.

    Args:
        shape (tuple[int, int]): Map height and width.
        points (np.ndarray): Points (N, 2) x, y in pixels.
        sigma (float): Gaussian standard deviation in pixels.

    Returns:
        (np.ndarray): Density (H, W) float32.
    """
    h, w = shape
    d = np.zeros((h, w), np.float32)
    xy = np.clip(np.round(points).astype(np.int64), 0, [w - 1, h - 1])
    np.add.at(d, (xy[:, 1], xy[:, 0]), 1.0)  # unbuffered: coincident centres add up
    return cv2.GaussianBlur(d, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)


def draw_heatmap(im: np.ndarray, points: np.ndarray, sigma: float, alpha: float = 0.6) -> np.ndarray:
    """Blend a colour-mapped density of the points over the image, leaving empty regions untouched.

    Args:
        im (np.ndarray): BGR image.
        points (np.ndarray): Points (N, 2) x, y in pixels.
        sigma (float): Gaussian standard deviation in pixels.
        alpha (float): Opacity of the heatmap at the densest spot.

    Returns:
        (np.ndarray): A new blended image.
    """
    d = density_map(im.shape[:2], points, sigma)
    peak = d.max()
    if peak <= 0:
        return im.copy()
    level = np.sqrt(d / peak)  # sqrt lifts lone heads next to dense clusters into view
    heat = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    a = (alpha * level)[..., None]
    return (im * (1 - a) + heat * a).round().astype(np.uint8)


def draw_count(im: np.ndarray, text: str, subtext: str = "") -> np.ndarray:
    """Write the count large in the top-left corner on a dark plate, with an optional smaller line below, in place.

    Args:
        im (np.ndarray): BGR image, modified in place.
        text (str): Main line, e.g. "Count: 123".
        subtext (str): Second line in a smaller font, e.g. the smoothing window.

    Returns:
        (np.ndarray): The same image.
    """
    scale = max(0.5, min(im.shape[:2]) / 360)  # ~65 px tall digits on 1080p, still legible at 128 px
    lines = [(text, scale, max(1, round(2 * scale)))]
    if subtext:
        lines.append((subtext, scale / 2, max(1, round(scale))))
    sizes = [cv2.getTextSize(t, FONT, s, th) for t, s, th in lines]
    pad = max(2, round(6 * scale))
    width = max(tw for (tw, _), _ in sizes) + 2 * pad
    height = sum(th + base for (_, th), base in sizes) + (len(lines) + 1) * pad
    cv2.rectangle(im, (0, 0), (width, height), (0, 0, 0), -1)
    y = 0
    for (t, s, th), ((_, h), base) in zip(lines, sizes):
        y += pad + h
        cv2.putText(im, t, (pad, y), FONT, s, (255, 255, 255), th, cv2.LINE_AA)
        y += base
    return im


def annotate(
    im: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    cls: np.ndarray,
    names: dict[int, str],
    style: str = "boxes",
    text: str = "",
    subtext: str = "",
    line_width: int | None = None,
    show_labels: bool = True,
    show_conf: bool = True,
) -> np.ndarray:
    """Return a copy of the image with the detections drawn in the chosen style and the count in a corner.

    Args:
        im (np.ndarray): BGR image; not modified.
        boxes (np.ndarray): Boxes (N, 4) x1, y1, x2, y2 in pixels.
        scores (np.ndarray): Confidences (N,).
        cls (np.ndarray): Class indices (N,).
        names (dict[int, str]): Class names.
        style (str): One of `STYLES`: "boxes", "points" (a dot per head) or "heatmap" (Gaussian density).
        text (str): Count line; empty draws no count plate.
        subtext (str): Smaller second line under the count.
        line_width (int, optional): Box line width; scaled to the image when None.
        show_labels (bool): Draw class names on boxes.
        show_conf (bool): Draw confidences on boxes.

    Returns:
        (np.ndarray): The annotated image.

    Examples:
        >>> im = np.zeros((120, 160, 3), np.uint8)
        >>> out = annotate(im, np.array([[10, 10, 30, 30.0]]), np.array([0.9]), np.zeros(1), {0: "head"}, "points")
    """
    if style not in STYLES:
        raise ValueError(f"unknown style '{style}', expected one of {STYLES}")
    lw = line_width or auto_line_width(im.shape)
    size = min(head_size(boxes), min(im.shape[:2]) / 10)  # a few oversized boxes must not blot out the image
    if style == "heatmap":
        out = draw_heatmap(im, centres(boxes), sigma=max(2.0, size / 2))
    elif style == "points":
        out = draw_points(im.copy(), centres(boxes), radius=max(2, round(size / 5)))
    else:
        labels = None
        if show_labels:
            labels = [f"{names[int(c)]} {s:.2f}" if show_conf else names[int(c)] for c, s in zip(cls, scores)]
        out = draw_boxes(im.copy(), boxes, cls, lw, labels)
    return draw_count(out, text, subtext) if text else out


def draw_tracks(
    im: np.ndarray,
    boxes: np.ndarray,
    ids: np.ndarray,
    trails: np.ndarray,
    lines: list[np.ndarray],
    zones: list[np.ndarray],
    frame,
    line_width: int | None = None,
) -> np.ndarray:
    """Draw track IDs, trails, counting lines and zones with their running counts, in place.

    Trails and IDs share a colour per track; IDs are small (a crowd has hundreds), lines and zones carry their counts
    in a larger font on a dark plate.

    Args:
        im (np.ndarray): BGR image, modified in place.
        boxes (np.ndarray): Tracked boxes (N, 4) x1, y1, x2, y2 in pixels.
        ids (np.ndarray): Their track IDs (N,).
        trails (np.ndarray): Their recent centres (N, T, 2), oldest first.
        lines (list[np.ndarray]): Counting lines, each (2, 2).
        zones (list[np.ndarray]): Zone polygons, each (K, 2).
        frame (FrameTracks): This frame's counts (crossings per line, occupancy per zone).
        line_width (int, optional): Line width; scaled to the image when None.

    Returns:
        (np.ndarray): The same image.
    """
    lw = line_width or auto_line_width(im.shape)
    n = len(ids)
    pts = np.round(trails[:n]).astype(np.int32)
    for k in np.unique(ids % 20):  # one polylines call per colour, not per track
        cv2.polylines(im, pts[ids % 20 == k], False, colors(int(k), bgr=True), lw, cv2.LINE_AA)
    scale = max(0.25, min(0.5, head_size(boxes[:n]) / 40))  # IDs no wider than a head, still legible
    for (x, y), i in zip(centres(boxes[:n]).astype(int), ids):  # cv2 draws one string per call
        cv2.putText(im, str(i), (int(x) - 4, int(y) + 4), FONT, scale, colors(int(i) % 20, bgr=True), 1, cv2.LINE_AA)
    big = max(0.4, min(im.shape[:2]) / 900)
    for k, (line, (n_in, n_out)) in enumerate(zip(lines, frame.crossings)):
        a, b = np.round(line).astype(int)
        cv2.line(im, tuple(a.tolist()), tuple(b.tolist()), (0, 255, 255), 2 * lw, cv2.LINE_AA)
        _plate(im, f"line{k + 1} in {n_in} out {n_out}", tuple(a.tolist()), big)
    for k, (zone, occupancy) in enumerate(zip(zones, frame.occupancy)):
        poly = np.round(zone).astype(np.int32)
        cv2.polylines(im, [poly], True, (255, 0, 255), 2 * lw, cv2.LINE_AA)
        _plate(
            im, f"zone{k + 1}: {occupancy}", tuple(poly.mean(0).astype(int).tolist()), big
        )  # corners hide under the count
    return im


def _plate(im: np.ndarray, text: str, xy: tuple[int, int], scale: float):
    """Write text on a dark plate whose top-left corner is at xy, kept inside the image, in place."""
    th = max(1, round(2 * scale))
    (tw, h), base = cv2.getTextSize(text, FONT, scale, th)
    x = int(np.clip(xy[0], 0, max(im.shape[1] - tw - 4, 0)))
    y = int(np.clip(xy[1], 0, max(im.shape[0] - h - base - 4, 0)))
    cv2.rectangle(im, (x, y), (x + tw + 4, y + h + base + 4), (0, 0, 0), -1)
    cv2.putText(im, text, (x + 2, y + h + 2), FONT, scale, (255, 255, 255), th, cv2.LINE_AA)
