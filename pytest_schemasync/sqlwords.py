"""The words of one SQL statement, for rules that look at what a statement does.

``sqltext`` finds where psql splits a file; this module turns one statement's text into
tokens (keywords lower-cased, quoted identifiers unquoted, string and dollar-quoted literals
kept whole) so that role discovery and the build's refusals match keywords, never text
inside a literal, a comment or a function body.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .sqltext import Statement, split_statements

_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"  # letters, '_', non-ASCII (as sqltext)
_CONT = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # ... digits and '$'

_TOKEN = re.compile(
    rf"""
      (?P<ws>\s+)
    | (?P<comment>--[^\n]*)
    | (?P<cstart>/\*)
    | (?P<dollar>\$(?:{_START}[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]*)?\$)
    | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*'?)
    | (?P<string>(?:[bBxXnN]|[uU]&)?'(?:[^']|'')*'?)
    | (?P<ident>(?:[uU]&)?"(?:[^"]|"")*"?)
    | (?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)
    | (?P<word>{_START}{_CONT}*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "word" (lower-cased), "ident" (quoted, unquoted here), "string", "body", "punct"
    value: str
    start: int  # offset in the statement text
    end: int
    depth: int  # parentheses around the token

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value in words

    @property
    def name(self) -> str | None:
        """The identifier this token spells (unquoted ones fold to lower case)."""
        return self.value if self.kind in ("word", "ident") else None


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos, depth, end = 0, 0, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        assert m is not None
        kind = m.lastgroup
        stop = m.end()
        if kind == "cstart":
            level, i = 1, stop
            while level and i < end:
                j = min((k for k in (text.find("/*", i), text.find("*/", i)) if k >= 0),
                        default=-1)
                if j < 0:
                    i = end
                    break
                level += 1 if text.startswith("/*", j) else -1
                i = j + 2
            pos = i
            continue
        if kind in ("ws", "comment"):
            pos = stop
            continue
        value = m.group()
        if kind == "dollar":
            close = text.find(value, stop)
            body_end = end if close < 0 else close
            out.append(Token("body", text[stop:body_end], stop, body_end, depth))
            pos = end if close < 0 else close + len(value)
            continue
        if kind == "estring":
            out.append(Token("string", value[2:-1].replace("''", "'"), pos, stop, depth))
        elif kind == "string":
            body = value[value.index("'") + 1:-1]
            out.append(Token("string", body.replace("''", "'"), pos, stop, depth))
        elif kind == "ident":
            body = value[value.index('"') + 1:-1]
            out.append(Token("ident", body.replace('""', '"'), pos, stop, depth))
        elif kind == "word":
            out.append(Token("word", value.lower(), pos, stop, depth))
        elif kind == "num":
            out.append(Token("num", value, pos, stop, depth))
        else:
            if value == ")":
                depth = max(depth - 1, 0)
            out.append(Token("punct", value, pos, stop, depth))
            if value == "(":
                depth += 1
        pos = stop
    return out


def words_at(toks: list[Token], i: int, *words: str) -> bool:
    """Whether the tokens from ``i`` on are exactly these keywords."""
    return all(i + k < len(toks) and toks[i + k].is_word(w) for k, w in enumerate(words))


def find_word(toks: list[Token], word: str, start: int = 0, depth: int = 0) -> int:
    """Index of the first keyword ``word`` at parentheses depth ``depth``, or -1."""
    for i in range(start, len(toks)):
        if toks[i].depth == depth and toks[i].is_word(word):
            return i
    return -1


_HEAD = re.compile(r"\s*(\w+)(?:\s+(\w+))?(?:\s+(\w+))?")


@dataclass
class Piece:
    """One SQL statement psql runs, its first words, and its tokens when asked for."""

    statement: Statement
    head: tuple[str, str, str]  # first three words, lower-case ("" when fewer)
    _toks: list[Token] | None = field(default=None, repr=False)

    @property
    def toks(self) -> list[Token]:
        if self._toks is None:
            self._toks = tokens(self.statement.text)
        return self._toks

    @functools.cached_property
    def lower(self) -> str:
        return self.statement.text.lower()


@functools.lru_cache(maxsize=8)
def pieces(text: str) -> tuple[Piece, ...]:
    """The SQL statements of a file (split once, shared by the build's readers)."""
    out = []
    for statement in split_statements(text):
        if statement.kind == "sql":
            m = _HEAD.match(statement.text)
            words = [w.lower() if w else "" for w in (m.groups() if m else ("", "", ""))]
            out.append(Piece(statement, (words[0], words[1], words[2])))
    return tuple(out)
