"""Deployment: ONNX export, the model runners (.pt or .onnx), preprocessing, and the explain and predict commands."""
