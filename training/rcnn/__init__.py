"""calcsdk.training.rcnn: the paper's R-CNN (EdgeBoxes + AlexNet fc7 + linear SVM) training."""
