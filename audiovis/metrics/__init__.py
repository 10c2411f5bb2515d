"""torchmetrics metrics for video, keypoints, piano rolls and dance."""
