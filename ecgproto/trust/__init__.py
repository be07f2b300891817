"""Trust: the exact logit split, calibration, the guard, measurements, remarks, occlusion, explanations."""
