"""Which roles a set's SQL files refer to and which they create, found statement by statement.

Roles are global to a cluster, so a build must make the roles a file needs before it runs
(pg_dump writes ``OWNER TO``, ``GRANT ... TO``, ``CREATE POLICY ... TO``, ``ALTER DEFAULT
PRIVILEGES FOR ROLE``; hand-written files ``SET ROLE``). Statements are split the way psql
splits them (``sqltext``) and matched on their keywords (``sqlwords``): a role's name inside a
string, a comment or a function body is not a reference. The bodies of ``DO`` blocks, which
run during the build, are scanned too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sqltext import split_statements
from .sqlwords import Piece, Token, find_word, pieces, tokens, words_at

# Words that stand for a role but are not one we could create.
_NOT_ROLES = frozenset({"public", "current_user", "session_user", "current_role", "none",
                        "all", "group", "pg_database_owner"})
_CREATE_OPTION_LISTS = (("in", "role"), ("in", "group"), ("role",), ("admin",), ("user",))


@dataclass(frozen=True)
class RoleRef:
    name: str
    line: int
    how: str  # "owner", "grantee", "policy", "default privileges", "set role", ...


@dataclass(frozen=True)
class RoleCreation:
    """A top-level ``CREATE ROLE|USER|GROUP`` statement of a file."""

    name: str
    start_line: int
    end_line: int
    text: str
    options: tuple[Token, ...]  # the tokens after the name


@dataclass
class RoleUse:
    """What one set's files do with roles."""

    referenced: dict[str, RoleRef] = field(default_factory=dict)  # first reference of each
    created: dict[str, RoleCreation] = field(default_factory=dict)  # top-level CREATE ROLE
    created_in_blocks: set[str] = field(default_factory=set)  # CREATE ROLE inside a DO block
    drops: list[tuple[int, list[str]]] = field(default_factory=list)  # DROP ROLE: line, names
    superusers: set[str] = field(default_factory=set)  # roles production must have as such

    def merge(self, other: RoleUse) -> None:
        for name, ref in other.referenced.items():
            self.referenced.setdefault(name, ref)
        for name, creation in other.created.items():
            self.created.setdefault(name, creation)
        self.created_in_blocks |= other.created_in_blocks
        self.drops += other.drops
        self.superusers |= other.superusers

    @property
    def needed(self) -> dict[str, RoleRef]:
        """Roles to create before the build: referenced and not created by the files."""
        made = set(self.created) | self.created_in_blocks
        return {n: r for n, r in self.referenced.items() if n not in made}

    @property
    def touches_roles(self) -> bool:
        return bool(self.referenced or self.created or self.created_in_blocks or self.drops)


def _role_name(tok: Token | None) -> str | None:
    if tok is None:
        return None
    if tok.kind == "ident":
        return tok.value
    if tok.kind == "word" and tok.value not in _NOT_ROLES:
        return tok.value
    if tok.kind == "string":  # SET ROLE 'x', SET SESSION AUTHORIZATION 'x'
        return tok.value if tok.value.lower() not in _NOT_ROLES else None
    return None


def role_list(toks: list[Token], i: int) -> tuple[list[tuple[str, Token]], int]:
    """Comma-separated role specifications from ``i`` (``GROUP x`` allowed); returns the
    names and the index after the list."""
    found: list[tuple[str, Token]] = []
    while i < len(toks):
        if toks[i].is_word("group") and i + 1 < len(toks) and toks[i + 1].kind in ("word",
                                                                                    "ident"):
            i += 1
        name = _role_name(toks[i])
        if name is not None:
            found.append((name, toks[i]))
        elif not (toks[i].kind == "word" and toks[i].value in _NOT_ROLES):
            break
        i += 1
        if i < len(toks) and toks[i].kind == "punct" and toks[i].value == ",":
            i += 1
            continue
        break
    return found, i


class _Scanner:
    def __init__(self, use: RoleUse, text: str, first_line: int) -> None:
        self.use = use
        self.text = text
        self.first_line = first_line

    def line(self, tok: Token) -> int:
        return self.first_line + self.text.count("\n", 0, tok.start)

    def ref(self, name: str, tok: Token, how: str) -> None:
        self.use.referenced.setdefault(name, RoleRef(name, self.line(tok), how))
        if how == "event trigger owner":
            self.use.superusers.add(name)

    def refs(self, toks: list[Token], i: int, how: str) -> int:
        names, after = role_list(toks, i)
        for name, tok in names:
            self.ref(name, tok, how)
        return after

    # --- statements -------------------------------------------------------------------

    def statement(self, toks: list[Token], *, in_block: bool = False) -> None:
        if not toks:
            return
        head = toks[0]
        if head.is_word("grant"):
            self.grant(toks, 0)
        elif head.is_word("revoke"):
            self.revoke(toks, 0)
        elif head.is_word("alter"):
            self.alter(toks)
        elif head.is_word("create"):
            self.create(toks, in_block=in_block)
        elif head.is_word("set"):
            self.set(toks)
        elif head.is_word("reassign") or words_at(toks, 0, "drop", "owned"):
            by = find_word(toks, "by")
            after = self.refs(toks, by + 1, "owned by") if by > 0 else len(toks)
            if head.is_word("reassign") and words_at(toks, after, "to"):
                self.refs(toks, after + 1, "reassign owned to")
        elif head.is_word("drop") and len(toks) > 2 and toks[1].value in ("role", "user",
                                                                          "group"):
            if not words_at(toks, 1, "user", "mapping"):
                i = 4 if words_at(toks, 2, "if", "exists") else 2
                names, _ = role_list(toks, i)
                self.use.drops.append((self.line(head), [n for n, _ in names]))
        elif words_at(toks, 0, "comment", "on", "role"):
            self.refs(toks, 3, "comment on role")
        if head.is_word("do"):
            for tok in toks[1:]:
                if tok.kind in ("body", "string"):
                    self.block(tok)

    def block(self, body: Token) -> None:
        """A DO block's body runs now: scan each statement-like piece of it."""
        inner = _Scanner(self.use, body.value, self.line(body))
        toks = tokens(body.value)
        starts = {"grant", "revoke", "alter", "create", "set", "reassign"}
        for i, tok in enumerate(toks):
            if tok.kind == "word" and tok.value in starts and (
                    i == 0 or toks[i - 1].kind == "punct" or toks[i - 1].is_word(
                        "then", "else", "begin", "loop", "execute")):
                end = next((k for k in range(i, len(toks))
                            if toks[k].kind == "punct" and toks[k].value == ";"), len(toks))
                inner.statement(toks[i:end], in_block=True)
            elif tok.kind == "string" and tok.value.strip():
                for statement in split_statements(tok.value):
                    _Scanner(self.use, statement.text, inner.line(tok)).statement(
                        tokens(statement.text), in_block=True)

    def grant(self, toks: list[Token], g: int) -> None:
        to = find_word(toks, "to", g + 1)
        if to < 0:
            return
        if find_word(toks, "on", g + 1) < 0 or find_word(toks, "on", g + 1) > to:
            self.refs(toks, g + 1, "granted role")  # GRANT role TO role
        after = self.refs(toks, to + 1, "grantee")
        self.granted_by(toks, after)

    def revoke(self, toks: list[Token], r: int) -> None:
        i = r + 1
        if (i + 2 < len(toks) and toks[i + 1].is_word("option")
                and toks[i + 2].is_word("for")):
            i += 3
        frm = find_word(toks, "from", i)
        if frm < 0:
            return
        on = find_word(toks, "on", i)
        if on < 0 or on > frm:
            self.refs(toks, i, "revoked role")
        after = self.refs(toks, frm + 1, "grantee")
        self.granted_by(toks, after)

    def granted_by(self, toks: list[Token], i: int) -> None:
        by = find_word(toks, "granted", i)
        if by >= 0 and words_at(toks, by + 1, "by"):
            self.refs(toks, by + 2, "granted by")

    def alter(self, toks: list[Token]) -> None:
        if words_at(toks, 1, "default", "privileges"):
            i = 3
            if words_at(toks, i, "for") and len(toks) > i + 1 and toks[i + 1].value in (
                    "role", "user"):
                i = self.refs(toks, i + 2, "default privileges")
            for k in range(i, len(toks)):
                if toks[k].is_word("grant"):
                    self.grant(toks, k)
                    break
                if toks[k].is_word("revoke"):
                    self.revoke(toks, k)
                    break
            return
        if len(toks) > 2 and toks[1].value in ("role", "user", "group") and not words_at(
                toks, 1, "user", "mapping"):
            self.refs(toks, 2, "altered role")
            if toks[1].is_word("group"):
                for word in ("add", "drop"):
                    k = find_word(toks, word, 3)
                    if k >= 0 and words_at(toks, k + 1, "user"):
                        self.refs(toks, k + 2, "group member")
            return
        if words_at(toks, 1, "policy"):
            to = find_word(toks, "to", 2)
            if to >= 0 and not words_at(toks, 2, "rename"):
                self.refs(toks, to + 1, "policy role")
            return
        # an event trigger's owner must be a superuser (the build makes it one)
        how = "event trigger owner" if words_at(toks, 1, "event", "trigger") else "owner"
        for k in range(1, len(toks) - 2):
            if words_at(toks, k, "owner", "to"):
                self.refs(toks, k + 2, how)

    def create(self, toks: list[Token], *, in_block: bool) -> None:
        if len(toks) < 3:
            return
        kind = toks[1].value
        if kind in ("role", "user", "group") and not words_at(toks, 1, "user", "mapping"):
            name = _role_name(toks[2])
            if name is None:
                return
            if in_block:
                self.use.created_in_blocks.add(name)
            else:
                self.use.created.setdefault(name, RoleCreation(
                    name, self.line(toks[0]), self.line(toks[-1]), self.text,
                    tuple(toks[3:])))
            for k in range(3, len(toks)):
                for words in _CREATE_OPTION_LISTS:
                    if words_at(toks, k, *words) and not (words == ("role",) and k > 3
                                                          and toks[k - 1].is_word("in")):
                        self.refs(toks, k + len(words), "member of" if words[0] == "in"
                                  else "member")
            return
        if words_at(toks, 1, "user", "mapping"):
            k = find_word(toks, "for", 3)
            if k >= 0:
                self.refs(toks, k + 1, "user mapping")
            return
        if kind == "schema":
            k = find_word(toks, "authorization", 2)
            if k >= 0:
                self.refs(toks, k + 1, "schema owner")
            return
        if kind == "policy":
            to = find_word(toks, "to", 2)
            if to >= 0:
                self.refs(toks, to + 1, "policy role")

    def set(self, toks: list[Token]) -> None:
        i = 1
        if len(toks) > 1 and toks[1].value in ("session", "local") and not words_at(
                toks, 1, "session", "authorization"):
            i = 2
        if words_at(toks, i, "role"):
            k = i + 1
            if k < len(toks) and (toks[k].is_word("to") or toks[k].value == "="):
                k += 1
            self.refs(toks, k, "set role")
        elif words_at(toks, i, "session", "authorization"):
            self.refs(toks, i + 2, "set session authorization")


def _may_name_roles(piece: Piece) -> bool:
    """Cheap test on a statement's first words: most of a dump (tables, functions, indexes)
    names no role, and is never tokenized."""
    first, second, third = piece.head
    if first in ("grant", "revoke", "set", "reassign", "do"):
        return True
    if first == "alter":
        return second in ("default", "role", "user", "group", "policy") or "owner" in piece.lower
    if first == "create":
        return second in ("role", "user", "group", "schema", "policy")
    if first == "drop":
        return second in ("role", "user", "group", "owned")
    return first == "comment" and third == "role"


def scan_roles(text: str, use: RoleUse | None = None) -> RoleUse:
    """Add what the file ``text`` does with roles to ``use`` (a new one by default)."""
    use = use if use is not None else RoleUse()
    for piece in pieces(text):
        if _may_name_roles(piece):
            _Scanner(use, piece.statement.text, piece.statement.start_line).statement(
                piece.toks)
    return use
