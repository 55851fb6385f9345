"""Small helpers for messages shown to people (CLI lines, chat text): counts and paths as typed."""

from __future__ import annotations

from pathlib import Path


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 article', '2 articles', '0 articles'; `many` for irregular plurals ('1 copy', '2 copies')."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def shown_path(path: str | Path) -> str:
    """A relative path as a shell user would type it: 'index' reads as a word, './index' as a folder."""
    text = str(path)
    if Path(text).is_absolute() or text.startswith((".", "~")) or "://" in text:
        return text
    return f"./{text}"
