"""ecgproto: interpretable prototype-based ECG rhythm classification (a simplified ProtoECGNet rhythm branch)."""
