"""Files to tensors: images, annotation and pairs formats, datasets, synthetic data."""
