"""Developer tools: benchmarks, rehearsal, cross-validation, the CI gate, the local PhysioNet, dvc.yaml deps."""
