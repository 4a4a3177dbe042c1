"""SQL as text: the statements of a file, where each starts, and the file line of a server error.

Why one module: the migrator runs a file statement by statement and the
pair tests run seed and check files the same way; both must cut a file
where PostgreSQL would, skip the comments above a statement so a line
number points at the statement itself, and turn the position the server
gives for an error back into a line of the file.  Three copies of this once
disagreed (one cut ``/* a /* b */ c */`` after the first ``*/``).

This is a lexer, not a parser, in pure Python: it knows what PostgreSQL's
lexer knows about where a statement ends (quotes, comments, parentheses,
and ``BEGIN ... END`` bodies of SQL-standard functions), and nothing of the
grammar, so it splits syntax of other engines (CockroachDB) too, and loads
no C extension for commands that never run SQL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    """One statement of a SQL file: its text from its first token, where it starts, its line."""

    text: str  # from the first token to the last, without the ``;``
    start: int  # character offset of the first token in the file
    line: int  # 1-based line of the first token

    @property
    def end(self) -> int:
        """Character offset just past the statement's last token."""
        return self.start + len(self.text)


class Unterminated(ValueError):
    """A quote, quoted identifier, dollar quote or block comment is not closed."""


def line_at(text: str, offset: int) -> int:
    """1-based line of character ``offset`` in ``text`` (clamped to the text)."""
    return text.count("\n", 0, max(0, min(offset, len(text)))) + 1


def error_offset(position: int | None, sent: str, *, prefix: int = 0) -> int | None:
    """The offset in ``sent`` of a server error position, or None when it falls outside.

    PostgreSQL reports a 1-based character position in the query string it
    received; ``prefix`` characters were sent before ``sent`` (a ``PREPARE``
    around a query, say).
    """
    if position is None:
        return None
    offset = position - 1 - prefix
    return offset if 0 <= offset <= len(sent) else None


def error_line(
    position: int | None, sent: str, *, prefix: int = 0, first_line: int = 1
) -> int | None:
    """The file line of a server error position in ``sent``, which starts on ``first_line``.

    None when the server gave no position or one outside ``sent`` (then the
    caller names the statement's own line).
    """
    offset = error_offset(position, sent, prefix=prefix)
    return None if offset is None else first_line + line_at(sent, offset) - 1


def skip_comments(text: str, pos: int, end: int | None = None) -> int:
    """The first offset at or after ``pos`` that is not whitespace or a comment.

    Block comments nest, as in PostgreSQL; an unterminated one runs to ``end``.
    """
    stop = len(text) if end is None else end
    while pos < stop:
        char = text[pos]
        if char.isspace():
            pos += 1
        elif text.startswith("--", pos):
            newline = text.find("\n", pos, stop)
            pos = stop if newline < 0 else newline + 1
        elif text.startswith("/*", pos):
            try:
                pos = _block_comment_end(text, pos, stop)
            except Unterminated:
                return stop
        else:
            break
    return min(pos, stop)


def _block_comment_end(text: str, pos: int, stop: int) -> int:
    """Offset past the block comment opening at ``pos``; nested comments count."""
    depth, pos = 1, pos + 2
    while depth:
        opening = text.find("/*", pos, stop)
        closing = text.find("*/", pos, stop)
        if closing < 0:
            raise Unterminated("block comment")
        if 0 <= opening < closing:
            depth, pos = depth + 1, opening + 2
        else:
            depth, pos = depth - 1, closing + 2
    return pos


def _is_ident_start(char: str) -> bool:
    return char.isalpha() or char == "_" or ord(char) >= 0x80


def _is_ident_char(char: str) -> bool:
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def _quoted_end(text: str, pos: int, quote: str, *, backslash: bool = False) -> int:
    """Offset past the quoted string or identifier opening at ``pos`` (doubled quotes escape)."""
    pos += 1
    size = len(text)
    while pos < size:
        char = text[pos]
        if backslash and char == "\\":
            pos += 2
        elif char == quote:
            if text.startswith(quote, pos + 1):
                pos += 2
            else:
                return pos + 1
        else:
            pos += 1
    raise Unterminated("quoted string" if quote == "'" else "quoted identifier")


def _dollar_tag(text: str, pos: int) -> str | None:
    """The ``$tag$`` opening a dollar quote at ``pos``, or None (``$1`` is a parameter)."""
    end = pos + 1
    if end < len(text) and text[end] != "$":
        if not _is_ident_start(text[end]):
            return None
        while end < len(text) and _is_ident_char(text[end]) and text[end] != "$":
            end += 1
    if end >= len(text) or text[end] != "$":
        return None
    return text[pos : end + 1]


#: CREATE [OR REPLACE] FUNCTION|PROCEDURE: the statements whose ``BEGIN ... END`` body
#: (SQL-standard, PostgreSQL 14) holds semicolons that do not end the statement (psql's rule).
_ROUTINE_HEADS = (("create", "function"), ("create", "procedure"))
_ROUTINE_HEADS_OR = (
    ("create", "or", "replace", "function"),
    ("create", "or", "replace", "procedure"),
)


def _ends(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each statement's raw text, between top-level ``;``.

    Raises `Unterminated` when a quote or comment is not closed.
    """
    pieces: list[tuple[int, int]] = []
    size = len(text)
    pos = begin = 0
    parens = depth = 0
    words: list[str] = []  # the statement's first identifiers, lower case
    routine = False
    while pos < size:
        char = text[pos]
        if char == ";" and parens == 0 and depth == 0:
            pieces.append((begin, pos))
            pos = begin = pos + 1
            parens = depth = 0
            words, routine = [], False
        elif char == "-" and text.startswith("--", pos):
            newline = text.find("\n", pos)
            pos = size if newline < 0 else newline + 1
        elif char == "/" and text.startswith("/*", pos):
            pos = _block_comment_end(text, pos, size)
        elif char == "'":
            pos = _quoted_end(text, pos, "'")
        elif char == '"':
            pos = _quoted_end(text, pos, '"')
        elif char == "$" and (tag := _dollar_tag(text, pos)) is not None:
            closing = text.find(tag, pos + len(tag))
            if closing < 0:
                raise Unterminated("dollar quote")
            pos = closing + len(tag)
        elif char == "(":
            parens, pos = parens + 1, pos + 1
        elif char == ")":
            parens, pos = max(0, parens - 1), pos + 1
        elif _is_ident_start(char):
            end = pos + 1
            while end < size and _is_ident_char(text[end]):
                end += 1
            word = text[pos:end].lower()
            if word == "e" and end < size and text[end] == "'":
                pos = _quoted_end(text, end, "'", backslash=True)
                continue
            if len(words) < 4:
                words.append(word)
                routine = routine or tuple(words[:2]) in _ROUTINE_HEADS
                routine = routine or tuple(words[:4]) in _ROUTINE_HEADS_OR
            if routine and parens == 0:
                if word == "begin" or (word == "case" and depth):
                    depth += 1
                elif word == "end" and depth:
                    depth -= 1
            pos = end
        elif char.isdigit():
            # A number: `1e5`, `2abc` must not start an identifier named `e`.
            end = pos + 1
            while end < size and (text[end].isalnum() or text[end] in "._"):
                end += 1
            pos = end
        else:
            pos += 1
    pieces.append((begin, size))
    return pieces


@functools.lru_cache(maxsize=1024)
def split_statements(text: str) -> tuple[Statement, ...] | None:
    """The statements of ``text``, each from its first token, or None when it cannot be split.

    None means a quote or comment is not closed: the caller runs the text
    whole and lets the server name the error.  Cached: the migrator and the
    pair tests run the same files many times.
    """
    try:
        pieces = _ends(text)
    except Unterminated:
        return None
    statements: list[Statement] = []
    line, counted = 1, 0  # lines counted from the previous statement on: one pass
    for begin, end in pieces:
        start = skip_comments(text, begin, end)
        body = text[start:end].rstrip()
        if body:
            line, counted = line + text.count("\n", counted, start), start
            statements.append(Statement(body, start, line))
    return tuple(statements)


def mentions_word(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` holds any of the lower-case ``words`` as a whole word, any case.

    A cheap superset test before parsing a file (words in strings and
    comments count too).  Substring searches on the lower-cased text first:
    on 5 MB a regular expression with word boundaries and IGNORECASE costs a
    second, ``in`` a few milliseconds; the boundaries are checked only for
    the words found as substrings.
    """
    lowered = text.lower()
    found = [word for word in words if word in lowered]
    if not found:
        return False
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, found)) + r")\b")
    return pattern.search(lowered) is not None
