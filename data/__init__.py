"""Dataset YAMLs, hyperparameters and the converters that turn raw dataset releases into YOLO labels."""
