"""Data: the PTB-XL layout and labels, any WFDB record, download, the data step, prepare, the synthetic generator."""
