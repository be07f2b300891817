"""URLs from outside (a download's base URL, data.ptbxl_url): checked before use and printed without secrets.
Standard library only: params validation (config.py) uses it, so every stage depends on this small file."""
from __future__ import annotations

import urllib.parse


def shown(url: str) -> str:
    """The URL as printed: without a user name, password or query (https://user:secret@host/?token=x ->
    https://***@host/?***)."""
    parts = urllib.parse.urlsplit(url)
    netloc = "***@" + parts.netloc.rsplit("@", 1)[1] if "@" in parts.netloc else parts.netloc
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query="***" if parts.query else ""))


def origin(url: str) -> tuple:
    """(scheme, host, port) of an http(s) URL; ValueError for any other URL."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:  # urllib cannot use them, and the URL goes into logs and dvc.lock
        raise ValueError(f"{shown(url)[:200]}: a user name or password in the URL is not supported "
                         "(PhysioNet's open data needs none)")
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown(url)[:200]}: expected an http:// or https:// URL (not {scheme or 'a path'}:)")
    return scheme, parts.hostname.lower(), parts.port or {"http": 80, "https": 443}[scheme]
