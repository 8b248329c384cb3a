"""calcsdk.training: PyTorch + scikit-learn training, data generation and cross-validation."""
