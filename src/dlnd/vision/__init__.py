"""Vision with PyTorch: image classifiers, their data and figures, and what convolution does."""
