"""YOLOv5 detection models for crowd counting (anchor head and anchor-free YOLOv5u), built from Ultralytics' layers."""

from models.head import AnchorDetect
from models.yolo import AnchorDetectionModel, AnchorFreeDetectionModel, build_model

__all__ = "AnchorDetect", "AnchorDetectionModel", "AnchorFreeDetectionModel", "build_model"
