"""Split PostgreSQL SQL scripts exactly the way ``psql -f`` does.

psql does not parse SQL. Its lexer (src/fe_utils/psqlscan.l) only tracks quotes, comments,
dollar quotes, parentheses and, since PG14, BEGIN ... END nesting inside
``CREATE [OR REPLACE] FUNCTION|PROCEDURE``; it sends the query buffer at a ';' outside all of
those. This module re-implements that lexing in pure Python, line by line like psql's MainLoop,
so that pg_dump output and hand-written scripts split the same way psql would split them.

Facts checked against the real psql 15.18 (the tests record them):

* ``psql:FILE:LINE: ERROR`` reports psql's input line counter at the moment the statement is
  sent: the line of its terminating ';' (not the line where it starts). Several statements
  ending on one line all report that line.
* A ';' inside parentheses does NOT end a statement: ``SELECT (1;`` + ``);`` is sent as one.
* A statement left without ';' at end of file is sent at EOF and reported at the file's LAST
  line, even if blank lines or comments follow it.
* ``COPY ... FROM stdin`` reads its data from the lines after the line holding the ';', up to a
  line that is exactly ``\\.`` (or EOF); errors in the data are reported at the ``\\.`` line.
  Whatever follows the ';' on the COPY line itself runs after the data.
  ``\\copy ... from stdin`` reads its data the same way.
* ``\\g``/``\\gset``/``\\gexec`` ... send the buffer; errors are reported at their line.
  ``\\r`` discards the buffer. ``\\;`` puts a ';' into the buffer without sending it.
* A meta-command name ends at whitespace or a backslash, so ``\\echo a\\echo b`` is two
  commands; ``\\\\`` ends a command's arguments and the rest of the line is SQL again, except
  for whole-line commands such as ``\\!`` and ``\\copy``.

Known limits (psql runtime behaviour a lexer cannot know): psql variables (``:foo``) are not
expanded, ``\\if`` branches and ``\\q`` are not interpreted, standard_conforming_strings is
assumed on (pg_dump always sets it), and a COPY FROM stdin is assumed to succeed (when it
fails, psql would run its data lines as SQL).
"""

import bisect
import re
from dataclasses import dataclass

__all__ = [
    "MetaCommand",
    "Statement",
    "blank_restrict_lines",
    "meta_commands",
    "split_statements",
    "statement_at_line",
]


@dataclass(frozen=True)
class Statement:
    """One unit psql executes, as a contiguous slice of the file.

    ``text`` never includes leading whitespace or comments (a comment "attached" to a statement
    is dropped; comments inside it are kept) nor the trailing newline. SQL statements include
    their terminating ';'. A ``copy`` statement runs through its ``\\.`` line.
    """

    text: str
    start_line: int
    end_line: int
    kind: str  # "sql" | "meta" | "copy"


@dataclass(frozen=True)
class MetaCommand:
    line: int
    name: str
    args: str


# psql lexes bytes and treats every byte >= 0x80 as a letter; in decoded text that means
# every non-ASCII character.
# Written as ASCII complements: a class spelling out \x80-\U0010ffff takes ~10 ms each to
# compile, which every pytest session would pay at start-up.
_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"  # letters, '_', non-ASCII
_CONT = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # ... and digits
_CONT_D = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # ... and '$'
_IDENT = rf"{_START}{_CONT_D}*"

# Tokens of psqlscan.l's INITIAL state that matter for splitting. Order mirrors flex's
# longest-match choice where two rules could start at the same character.
_TOKEN = re.compile(
    rf"""
      (?P<ws>[ \t\r\f]+)
    | (?P<comment>--[^\r\n]*)
    | (?P<cstart>/\*)
    | (?P<dolq>\$(?:{_START}{_CONT}*)?\$)
    # numbers and $n parameters swallow trailing identifier chars ("trailing junk", PG15+),
    # so that 1e'x' is not an E'' string and 1a$$ is not a dollar quote
    | (?P<num>(?:\$[0-9]+|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?:{_IDENT})?)
    | (?P<ident>{_IDENT})
    # '::' must win over ':name' (psql variable), which is not an identifier
    | (?P<var>::|:{_CONT}+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_XC_TOKEN = re.compile(r"/\*|\*+/")
_XE_TOKEN = re.compile(r"[\\']")
_META_NAME = re.compile(r"[^ \t\r\f\\]*")
_COPY_FROM_STDIN = re.compile(r"\bfrom\s+stdin\b", re.IGNORECASE)
_RESTRICT_LINE = re.compile(r"[ \t]*\\(?:un)?restrict[ \t]+[A-Za-z0-9]+[ \t]*")

_SPACE = " \t\r\f"
# Lexer states (psqlscan.l names in comments).
_INITIAL, _XC, _XQ, _XE, _XD, _XDOLQ = range(6)  # -, xc, xq/xb/xh/xus, xe, xd/xui, xdolq

# Meta-commands that take the rest of the line verbatim (OT_WHOLE_LINE in command.c), so
# "\\" and "\" do not end them there.
_WHOLE_LINE = frozenset({"!", "ef", "ev", "sf", "sf+", "sv", "sv+", "h", "help"})
# OT_FILEPIPE: an argument starting with '|' takes the rest of the line.
_FILEPIPE = frozenset({"g", "gx", "o", "out", "w", "write"})
# Commands returning PSQL_CMD_SEND: they send the query buffer and reset the lexer.
_SEND = frozenset(
    {"g", "gx", "gset", "gexec", "gdesc", "crosstabview", "watch", "parse", "sendpipeline"}
)
_RESET = frozenset({"r", "reset"})
_TRACKED = frozenset({"create", "function", "procedure", "or", "replace"})


@dataclass
class _Item:
    kind: str
    start: int
    end: int
    report_line: int  # psql's line counter when it ran this (what its errors report)
    meta: MetaCommand | None = None


class _Lines:
    """The input as psql reads it: line by line, with its line counter."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Lines are split on '\n' only, as psql's fgets does; '\r' stays in the line.
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        if self.starts[-1] == len(text) and len(self.starts) > 1:
            self.starts.pop()  # a final '\n' does not start another line
        self.nlines = len(self.starts) if text else 0
        self.next_line = 0
        self.lineno = 0  # mirrors pset.lineno

    def line_bounds(self, k: int) -> tuple[int, int]:
        s = self.starts[k]
        e = self.starts[k + 1] - 1 if k + 1 < self.nlines else len(self.text)
        # the last line may still end with '\n' when it is the file's final character
        if e > s and self.text[e - 1] == "\n":
            e -= 1
        return s, e

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def _read_copy_data(self, item: _Item) -> None:
        # handleCopyIn(): data comes from the lines after the current one, up to a line that
        # is exactly "\." (CRLF allowed) or EOF; only lines ending in '\n' bump pset.lineno.
        text = self.text
        while self.next_line < self.nlines:
            s, e = self.line_bounds(self.next_line)
            self.next_line += 1
            if e < len(text):
                self.lineno += 1
            line = text[s:e]
            if line in ("\\.", "\\.\r"):
                item.end = s + 2
                break
            item.end = e - 1 if line.endswith("\r") else e
        item.report_line = self.lineno


class _Scanner(_Lines):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.items: list[_Item] = []
        self.mode = _INITIAL
        self.xcdepth = 0
        self.dolq = ""
        self._reset_lexer()
        self._reset_statement()

    # -- state -------------------------------------------------------------------------

    def _reset_lexer(self) -> None:
        # psql_scan_reset(): after \r or a buffer sent by a meta-command
        self.paren_depth = 0
        self.begin_depth = 0
        self.ident_count = 0
        self.idents = ["", "", "", ""]

    def _reset_statement(self) -> None:
        self.st_start: int | None = None
        self.st_last = 0
        self.first_word: str | None = None
        self.prev_word: str | None = None
        self.copy_in = False

    # -- driver --------------------------------------------------------------------------

    def run(self) -> list[_Item]:
        while self.next_line < self.nlines:
            k = self.next_line
            self.next_line += 1
            self.lineno += 1
            s, e = self.line_bounds(k)
            if k == 0 and self.text.startswith("\ufeff"):
                s += 1  # psql drops a UTF-8 BOM on the first line
            self._scan_line(s, e)
        if self.st_start is not None:
            if self.mode in (_XQ, _XE, _XD, _XDOLQ):
                # unterminated literal: psql still sends the buffer at EOF
                self.st_last = max(self.st_last, len(self.text.rstrip()))
            self._finish_sql(self.st_last, self.lineno)
        self.items.sort(key=lambda it: it.start)
        return self.items

    def _scan_line(self, pos: int, end: int) -> None:
        text = self.text
        while pos < end:
            mode = self.mode
            if mode == _INITIAL:
                pos = self._scan_initial(pos, end)
            elif mode == _XC:
                m = _XC_TOKEN.search(text, pos, end)
                if m is None:
                    return
                pos = m.end()
                if m.group()[0] == "/":
                    self.xcdepth += 1  # comments nest
                elif self.xcdepth > 0:
                    self.xcdepth -= 1
                else:
                    self.mode = _INITIAL
            elif mode == _XDOLQ:
                i = text.find(self.dolq, pos, end)
                if i < 0:
                    return
                pos = i + len(self.dolq)
                self._close_literal(pos)
            elif mode == _XE:
                m = _XE_TOKEN.search(text, pos, end)
                if m is None:
                    return
                i = m.start()
                if text[i] == "\\":
                    # a backslash escapes the next char; at end of line psql's lexer sees it
                    # alone, so the next line starts unescaped
                    pos = i + 2 if i + 1 < end else end
                else:
                    pos = self._after_quote(i, end, "'")
            else:
                q = "'" if mode == _XQ else '"'
                i = text.find(q, pos, end)
                if i < 0:
                    return
                pos = self._after_quote(i, end, q)

    def _after_quote(self, i: int, end: int, q: str) -> int:
        if i + 1 < end and self.text[i + 1] == q:
            return i + 2  # doubled quote stays inside the literal
        self._close_literal(i + 1)
        return i + 1

    def _close_literal(self, pos: int) -> None:
        self.mode = _INITIAL
        self.st_last = pos

    def _open_literal(self, start: int, body: int, mode: int) -> int:
        self._significant(start, body, None)
        self.mode = mode
        return body

    # -- INITIAL state -------------------------------------------------------------------

    def _scan_initial(self, pos: int, end: int) -> int:
        text = self.text
        match = _TOKEN.match
        while pos < end:
            m = match(text, pos, end)
            assert m is not None  # (?P<other>.) always matches
            kind = m.lastgroup
            tok_end = m.end()
            if kind == "ws" or kind == "comment":
                pos = tok_end
            elif kind == "ident":
                pos = self._identifier(m.group(), pos, tok_end, end)
                if self.mode != _INITIAL:
                    return pos
            elif kind == "cstart":
                self.mode = _XC
                self.xcdepth = 0
                return tok_end
            elif kind == "dolq":
                self.dolq = m.group()
                return self._open_literal(pos, tok_end, _XDOLQ)
            elif kind == "num" or kind == "var":
                self._significant(pos, tok_end, None)
                pos = tok_end
            else:
                c = text[pos]
                if c == "'":
                    return self._open_literal(pos, pos + 1, _XQ)
                if c == '"':
                    return self._open_literal(pos, pos + 1, _XD)
                if c == "\\":
                    pos = self._backslash(pos, end)
                    continue
                self._significant(pos, pos + 1, None)
                pos += 1
                if c == "(":
                    self.paren_depth += 1
                elif c == ")":
                    if self.paren_depth > 0:
                        self.paren_depth -= 1
                elif c == ";" and self.paren_depth == 0 and self.begin_depth == 0:
                    self.ident_count = 0
                    if self.st_start == pos - 1:
                        self._reset_statement()  # a lone ';' runs nothing worth reporting
                    else:
                        self._finish_sql(pos, self.lineno)
        return pos

    def _identifier(self, word: str, pos: int, tok_end: int, end: int) -> int:
        text = self.text
        nxt = text[tok_end] if tok_end < end else ""
        if len(word) == 1:
            # string prefixes win over a one-letter identifier (flex longest match)
            if nxt == "'" and word in "bBxXnNeE":
                return self._open_literal(pos, tok_end + 1, _XE if word in "eE" else _XQ)
            if nxt == "&" and word in "uU":
                after = text[tok_end + 1] if tok_end + 1 < end else ""
                if after == "'":
                    return self._open_literal(pos, tok_end + 2, _XQ)
                if after == '"':
                    return self._open_literal(pos, tok_end + 2, _XD)
                self._significant(pos, tok_end, None)  # {xufailed}: not an identifier
                return tok_end
        lw = word.lower() if word.isascii() else ""
        if (
            lw == "stdin"
            and self.prev_word == "from"
            and self.paren_depth == 0
            and self.first_word == "copy"
        ):
            self.copy_in = True
        self._significant(pos, tok_end, lw)
        self._track_begin(lw)
        return tok_end

    def _track_begin(self, lw: str) -> None:
        # psqlscan.l's {identifier} rule: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, count
        # BEGIN/CASE ... END outside parentheses so that ';' in BEGIN ATOMIC bodies does not end
        # the statement. Only the first letters of the first four identifiers are remembered.
        if self.ident_count == 0:
            self.idents = ["", "", "", ""]
        if lw in _TRACKED and self.ident_count < 4:
            self.idents[self.ident_count] = lw[0]
        self.ident_count += 1
        i0, i1, i2, i3 = self.idents
        if (
            i0 == "c"
            and (i1 in ("f", "p") or (i1 == "o" and i2 == "r" and i3 in ("f", "p")))
            and self.paren_depth == 0
        ):
            if lw == "begin":
                self.begin_depth += 1
            elif lw == "case":
                if self.begin_depth >= 1:
                    self.begin_depth += 1
            elif lw == "end" and self.begin_depth > 0:
                self.begin_depth -= 1

    def _significant(self, start: int, end: int, word: str | None) -> None:
        if self.st_start is None:
            self.st_start = start
        if self.first_word is None:
            self.first_word = word or ""
        self.st_last = end
        self.prev_word = word

    # -- statements ----------------------------------------------------------------------

    def _finish_sql(self, end: int, report_line: int) -> None:
        assert self.st_start is not None
        item = _Item("copy" if self.copy_in else "sql", self.st_start, end, report_line)
        self.items.append(item)
        self._reset_statement()
        if item.kind == "copy":
            self._read_copy_data(item)

    # -- backslash commands --------------------------------------------------------------

    def _backslash(self, pos: int, end: int) -> int:
        text = self.text
        if pos + 1 < end and text[pos + 1] in ";:":
            # "\;" and "\:" put a literal char into the buffer; "\;" never sends it
            self._significant(pos, pos + 2, None)
            if text[pos + 1] == ";":
                self.ident_count = 0
                self.first_word = None  # the server may run a COPY FROM stdin glued on
            return pos + 2
        name_m = _META_NAME.match(text, pos + 1, end)
        assert name_m is not None
        name = name_m.group()
        args_start = name_m.end()
        if name in _WHOLE_LINE or name.lower() == "copy":
            args_end = nxt = end
        else:
            args_end, nxt = _scan_args(text, args_start, end, name in _FILEPIPE)
        if text.startswith("\\\\", nxt) and nxt + 1 < end:
            nxt += 2  # "\\" ends the command; the rest of the line is SQL again
        cmd_end = pos + len(text[pos:args_end].rstrip())
        meta = MetaCommand(self.line_of(pos), name, text[args_start:args_end].strip())
        item = _Item("meta", pos, cmd_end, self.lineno, meta)
        self.items.append(item)

        if name in _SEND:
            if self.st_start is not None:
                self._finish_sql(self.st_last, self.lineno)
            self._reset_lexer()
        elif name in _RESET:
            self._reset_statement()
            self._reset_lexer()
        elif name.lower() == "copy":
            args = meta.args
            if not args.startswith("(") and _COPY_FROM_STDIN.search(args):
                self._read_copy_data(item)
        return nxt


def _scan_args(text: str, i: int, end: int, filepipe: bool) -> tuple[int, int]:
    """Skip a meta-command's arguments like psqlscanslash.l; return (args_end, next)."""
    args_end = i
    while True:
        while i < end and text[i] in _SPACE:
            i += 1
        if i >= end or text[i] == "\\":
            return args_end, i  # unquoted backslash: "\\" separator or next command
        if filepipe and text[i] == "|":
            return end, end
        while i < end and text[i] not in _SPACE and text[i] != "\\":
            c = text[i]
            if c == "'":
                i = _skip_arg_quote(text, i + 1, end)
            elif c in '`"':
                j = text.find(c, i + 1, end)
                i = end if j < 0 else j + 1
            else:
                i += 1
        args_end = i

def _skip_arg_quote(text: str, i: int, end: int) -> int:
    while i < end:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'":
            if i + 1 < end and text[i + 1] == "'":
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return end  # unterminated: psql reports an error and drops the rest of the line


def _scan(text: str) -> tuple[_Scanner, list[_Item]]:
    scanner = _Scanner(text)
    return scanner, scanner.run()


def _to_statement(scanner: _Scanner, item: _Item) -> Statement:
    return Statement(
        text=scanner.text[item.start : item.end],
        start_line=scanner.line_of(item.start),
        end_line=scanner.line_of(item.end - 1),
        kind=item.kind,
    )


def split_statements(text: str) -> list[Statement]:
    """Statements in file order, split exactly where psql would send them.

    Whitespace and comments between statements are not statements; a comment directly in front
    of a statement is not part of its text either. A lone ';' (empty statement) is skipped. A
    trailing statement without ';' at EOF is returned too. Each backslash meta-command is a
    "meta" statement; a "\\copy ... from stdin" meta statement includes its data lines. A
    meta-command inside an unfinished SQL statement (rare) yields a "meta" statement nested in
    the SQL statement's line range, as psql keeps collecting the SQL around it.
    """
    scanner, items = _scan(text)
    return [_to_statement(scanner, it) for it in items]


def meta_commands(text: str) -> list[MetaCommand]:
    """Every psql backslash meta-command outside quotes/comments/dollar bodies/COPY data."""
    _, items = _scan(text)
    return [it.meta for it in items if it.meta is not None]


def blank_restrict_lines(text: str) -> str:
    """Blank out pg_dump's ``\\restrict KEY`` / ``\\unrestrict KEY`` lines, keeping line count.

    pg_dump 15.14+/16.10+/17.6+ writes them; older psql and non-psql loaders reject them. Only
    whole lines that are exactly such a command (pg_dump's alphanumeric key, optional
    surrounding blanks) and that psql would execute are blanked: the same text inside a
    string, comment, dollar-quoted body or COPY data is left alone. Line endings are kept.
    """
    scanner, items = _scan(text)
    out: list[str] = []
    last = 0
    for it in items:
        if it.meta is None or it.meta.name not in ("restrict", "unrestrict"):
            continue
        s, e = scanner.line_bounds(scanner.line_of(it.start) - 1)
        if s == 0 and text.startswith("\ufeff"):
            s = 1
        if e > s and text[e - 1] == "\r":
            e -= 1
        if _RESTRICT_LINE.fullmatch(text, s, e) is None:
            continue
        out.append(text[last:s])
        last = e
    out.append(text[last:])
    return "".join(out)


def statement_at_line(text: str, line: int) -> Statement | None:
    """The statement behind psql's ``psql:FILE:LINE: ERROR`` for the given 1-based LINE.

    psql reports the line where it sent the statement: the line of the terminating ';' (for
    COPY FROM stdin the ``\\.`` line, for a query ended by ``\\g``/``\\gexec`` that command's
    line, for a statement without ';' at EOF the file's last line). A statement sent on that
    line wins, SQL before meta-commands; if several SQL statements end on the same line the
    first one is returned. Otherwise any statement with start_line <= line <= end_line.
    """
    scanner, items = _scan(text)
    ranked = sorted(items, key=lambda it: (it.kind == "meta", it.start))
    for it in ranked:
        if it.report_line == line:
            return _to_statement(scanner, it)
    for it in ranked:
        if scanner.line_of(it.start) <= line <= scanner.line_of(it.end - 1):
            return _to_statement(scanner, it)
    return None
