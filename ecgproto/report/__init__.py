"""Report: ECGs on the clinical grid, the prototype gallery, the generated report."""
