"""Evaluation: AUROC and its interval, transfer to real PTB-XL, other hospitals' ECGs."""
