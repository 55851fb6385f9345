"""Conversation: follow-up questions without a generative model.

"What did Sanders say about a second meeting?" then "And what did she say about the letter?": the
second question alone does not say who "she" is, so retrieval ranks every passage about a letter
alike. `contextualize` turns a question that leans on the conversation (it opens with "and",
"what about"…, uses a pronoun, or is very short) into a retrieval query by appending the names and
content words of the earlier questions it leans on. The reader still reads the user's own question:
the carried words only steer which passages it reads.

Pure functions, no models: `contextualize(question, history) -> str`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

MAX_HISTORY_QUESTIONS = 4  # earlier user questions considered (follow-ups of follow-ups chain back)
MAX_CARRIED_TERMS = 8

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

# Openers that make a question lean on the previous one.
_OPENERS = ("and", "but", "also", "so", "then", "what about", "how about", "what else", "anything else", "what of")
# Pronouns that point back to an entity named earlier.
_PRONOUNS = {
    "he", "she", "they", "him", "her", "them", "his", "hers", "their", "theirs", "it", "its",
    "himself", "herself", "itself", "themselves",
}
_DEMONSTRATIVES = {"this", "that", "these", "those", "there", "then"}  # only in short questions

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each else few for from further had hadn't has hasn't have haven't having he he'd he'll he's her
    here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its
    itself let's me more most mustn't my myself no nor not of off on once only or other ought our ours
    ourselves out over own same shan't she she'd she'll she's should shouldn't so some such than that
    that's the their theirs them themselves then there there's these they they'd they'll they're they've
    this those through to too under until up very was wasn't we we'd we'll we're we've were weren't what
    what's when when's where where's which while who who's whom why why's will with won't would wouldn't
    you you'd you'll you're you've your yours yourself yourselves also just anything something else
    say said says tell told think thinks thought mean means meant happen happened happens
    """.split()
)

# Words that say what kind of answer is wanted, not what it is about ("how much", "how many").
QUESTION_WORDS = frozenset({"much", "many", "long", "far", "old"})


def stem(word: str) -> str:
    """A light suffix stripper ("ministers" → "minister", "talks" → "talk"): enough to match a question's
    words in news text, without a stemming library."""
    word = word.lower().replace("’", "'")
    for suffix in ("'s", "ies", "es", "s", "ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def words(text: str) -> list[re.Match]:
    """The words of text with their character offsets."""
    return list(_WORD.finditer(text))


def content_stems(text: str) -> set[str]:
    """Stems of text's words that carry content (no stop words, no single letters)."""
    return {stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1}


def contextualize(question: str, history: Iterable[Any] | None = None) -> str:
    """The retrieval query for `question` asked after `history` (earlier turns, oldest first).

    A self-contained question comes back unchanged. A follow-up comes back with the names and
    content words of the earlier question(s) it leans on appended (those it lacks), names first.
    """
    question = " ".join(str(question).split())
    previous = user_questions(history or [])[-MAX_HISTORY_QUESTIONS:]
    if not previous or not is_follow_up(question):
        return question
    # The previous question may itself be a follow-up: resolve it against what came before it.
    context = contextualize(previous[-1], previous[:-1])
    carried = carried_terms(context, exclude=question)
    return f"{question} {' '.join(carried)}" if carried else question


def is_follow_up(question: str) -> bool:
    """Does the question lean on the conversation (opener, pronoun, or too short to stand alone)?"""
    words = [w.lower() for w in _WORD.findall(question)]
    if not words:
        return False
    content = [w for w in words if w not in STOPWORDS]
    text = " ".join(words)
    if any(text == opener or text.startswith(opener + " ") for opener in _OPENERS):
        return True
    if any(w in _PRONOUNS for w in words):
        return True
    if len(words) <= 6 and any(w in _DEMONSTRATIVES for w in words):
        return True
    has_name = any(w[:1].isupper() for w in _WORD.findall(question)[1:])
    return len(content) <= 1 and not has_name


def carried_terms(text: str, exclude: str = "", limit: int = MAX_CARRIED_TERMS) -> list[str]:
    """Names (capitalized or numeric words) then other content words of `text`, minus those in `exclude`."""
    seen = {w.lower() for w in _WORD.findall(exclude)}
    names: list[str] = []
    others: list[str] = []
    for i, word in enumerate(_WORD.findall(text)):
        key = word.lower()
        if key in seen or key in STOPWORDS or len(word) < 2 and not word.isdigit():
            continue
        seen.add(key)
        is_name = word[:1].isupper() and i > 0 or word.isdigit() or word.isupper() and len(word) > 1
        (names if is_name else others).append(word)
    return (names + others)[:limit]


def user_questions(history: Iterable[Any]) -> list[str]:
    """The user's questions in a history given as any of:

    - plain strings (each an earlier question);
    - OpenAI-style messages {"role": "user" | "assistant", "content": str | [{"type": "text", "text": str}]}
      (what Gradio's ChatInterface passes; assistant turns are skipped);
    - [question, answer] pairs.
    """
    questions: list[str] = []
    for turn in history:
        text: str | None = None
        if isinstance(turn, str):
            text = turn
        elif isinstance(turn, dict):
            if turn.get("role", "user") == "user":
                text = _content_text(turn.get("content"))
        elif hasattr(turn, "role") and hasattr(turn, "content"):
            if getattr(turn, "role") == "user":
                text = _content_text(getattr(turn, "content"))
        elif isinstance(turn, (list, tuple)) and turn:
            text = _content_text(turn[0])
        if text and text.strip():
            questions.append(" ".join(text.split()))
    return questions


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") if isinstance(content.get("text"), str) else None
    if isinstance(content, (list, tuple)):
        parts = [_content_text(part) for part in content]
        return " ".join(p for p in parts if p) or None
    return None
