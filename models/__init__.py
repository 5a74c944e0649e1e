"""YOLOv5 anchor-based detection models for crowd counting, built from Ultralytics' layers."""

from models.head import AnchorDetect
from models.yolo import AnchorDetectionModel

__all__ = "AnchorDetect", "AnchorDetectionModel"
