"""A real CQL parser for the subset the emulator serves: tokenizer, recursive descent, AST,
compiled predicate. No regular expression ever looks at the whole query.

Grammar (keywords case-insensitive)::

    query    := expr [ORDER BY order ("," order)*] EOF
    expr     := and_expr (OR and_expr)*
    and_expr := not_expr ((AND [NOT] | NOT) not_expr)*     "a NOT b" means "a AND NOT b"
    not_expr := NOT not_expr | "(" expr ")" | clause
    clause   := FIELD OP value | FIELD [NOT] IN "(" value ("," value)* ")"
    OP       := = | != | ~ | !~ | > | >= | < | <=
    value    := "string" | 'string' | word | function "(" [value ("," value)*] ")"
    order    := FIELD [ASC | DESC]

Fields and operators:

===============================  ==============================  ============================
field                            operators                       matches
===============================  ==============================  ============================
space, space.key                 = != in, not in                 space key (case-insensitive)
type                             = != in, not in                 page, blogpost
id, content                      = != in, not in                 content id
ancestor                         = != in, not in                 any ancestor id
parent                           = != in, not in                 the direct parent id
label                            = != in, not in                 a label
creator / contributor            = != in, not in                 account id or username
status (emulator extension)      = != in, not in                 current, trashed, archived
title                            = != ~ !~                       exact title / words
text                             ~ !~                            words in title, body, labels
lastmodified, created            = != > >= < <=                  dates, see below
===============================  ==============================  ============================

``~`` matches when every word of the value occurs (``conf*`` is a prefix; an inner quoted
``"\\"exact phrase\\""`` must occur as a phrase). A query that never mentions ``status``
matches current content only, as Confluence's search never returns trashed or archived pages.

Dates: ``"yyyy-MM-dd HH:mm"``, ``"yyyy/MM/dd HH:mm"``, ``"yyyy-MM-dd"``, ``"yyyy/MM/dd"``, or
``now("-4w")`` / ``startOfDay("-1d")`` / ``endOfDay()`` with offsets in y, M, w, d, h, m. They
are read in the user's time zone, which the API never reveals, and denote an interval of their
granularity (a minute or a day): ``=`` is inside it, ``>=`` at or after its start, ``>`` at or
after its end, ``<`` before its start, ``<=`` before its end. So ``lastmodified > "... 10:30"``
skips a page edited at 10:30:20, which is why a sync must query with an overlap window.
"""

from __future__ import annotations

from dataclasses import dataclass


class CqlError(Exception):
    """The query cannot be parsed or uses a field/operator the subset does not know."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# ---------------------------------------------------------------- tokens

OPERATORS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
SPECIALS = set("()=!~<>,\"' \t\r\n")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "word" | "string" | "op" | "(" | ")" | "," | "eof"
    text: str
    pos: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "(),":
            tokens.append(Token(ch, ch, i))
            i += 1
            continue
        op = next((o for o in OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        if ch in "\"'":
            start = i
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise CqlError(f"unterminated string starting at position {start}")
                c = text[i]
                if c == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                    continue
                if c == ch:
                    i += 1
                    break
                chars.append(c)
                i += 1
            tokens.append(Token("string", "".join(chars), start))
            continue
        if ch == "!":
            raise CqlError(f"unexpected '!' at position {i}")
        start = i
        while i < n and text[i] not in SPECIALS:
            i += 1
        tokens.append(Token("word", text[start:i], start))
    tokens.append(Token("eof", "", n))
    return tokens


# ---------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Value:
    text: str
    function: str | None = None  # "now", "startofday", ... when the value is a call
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Clause:
    field: str  # canonical lower-case name
    op: str  # one of OPERATORS, or "in" / "not in"
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


Node = Clause | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderBy:
    field: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    where: Node
    order: tuple[OrderBy, ...]


FIELD_ALIASES = {
    "space": "space",
    "space.key": "space",
    "type": "type",
    "id": "id",
    "content": "id",
    "content.id": "id",
    "ancestor": "ancestor",
    "parent": "parent",
    "label": "label",
    "creator": "creator",
    "contributor": "contributor",
    "status": "status",
    "title": "title",
    "text": "text",
    "lastmodified": "lastmodified",
    "created": "created",
}
SET_OPS = frozenset({"=", "!=", "in", "not in"})
FIELD_OPS: dict[str, frozenset[str]] = {
    **{f: SET_OPS for f in ("space", "type", "id", "ancestor", "parent", "label", "creator")},
    "contributor": SET_OPS,
    "status": SET_OPS,
    "title": frozenset({"=", "!=", "~", "!~"}),
    "text": frozenset({"~", "!~"}),
    "lastmodified": frozenset({"=", "!=", ">", ">=", "<", "<="}),
    "created": frozenset({"=", "!=", ">", ">=", "<", "<="}),
}
ORDER_FIELDS = {"lastmodified", "created", "title"}
DATE_FUNCTIONS = {"now", "startofday", "endofday"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, kind: str) -> Token:
        token = self.take()
        if token.kind != kind:
            found = token.text or "end of query"
            raise CqlError(f"expected '{kind}' at position {token.pos} but found '{found}'")
        return token

    def query(self) -> Query:
        if self.peek().kind == "eof":
            raise CqlError("the query is empty")
        where = self.expr()
        order: list[OrderBy] = []
        if self.peek().is_keyword("ORDER"):
            self.take()
            if not self.take().is_keyword("BY"):
                raise CqlError("expected BY after ORDER")
            order.append(self.order_item())
            while self.peek().kind == ",":
                self.take()
                order.append(self.order_item())
        token = self.peek()
        if token.kind != "eof":
            raise CqlError(f"unexpected '{token.text}' at position {token.pos}")
        return Query(where=where, order=tuple(order))

    def order_item(self) -> OrderBy:
        token = self.take()
        name = token.text.lower()
        if token.kind != "word" or name not in ORDER_FIELDS:
            raise CqlError(f"cannot order by '{token.text}'")
        descending = False
        if self.peek().is_keyword("ASC", "DESC"):
            descending = self.take().text.upper() == "DESC"
        return OrderBy(name, descending)

    def expr(self) -> Node:
        node = self.and_expr()
        while self.peek().is_keyword("OR"):
            self.take()
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while True:
            token = self.peek()
            if token.is_keyword("AND"):
                self.take()
                if self.peek().is_keyword("NOT"):
                    self.take()
                    node = And(node, Not(self.not_expr()))
                else:
                    node = And(node, self.not_expr())
            elif token.is_keyword("NOT"):
                self.take()
                node = And(node, Not(self.not_expr()))
            else:
                return node

    def not_expr(self) -> Node:
        token = self.peek()
        if token.is_keyword("NOT"):
            self.take()
            return Not(self.not_expr())
        if token.kind == "(":
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        return self.clause()

    def clause(self) -> Clause:
        token = self.take()
        if token.kind != "word" or token.is_keyword("AND", "OR", "ORDER", "IN"):
            found = token.text or "end of query"
            raise CqlError(f"expected a field at position {token.pos} but found '{found}'")
        field = FIELD_ALIASES.get(token.text.lower())
        if field is None:
            raise CqlError(f"No field exists with the name: {token.text}")
        op_token = self.take()
        if op_token.kind == "op":
            op = op_token.text
        elif op_token.is_keyword("IN"):
            op = "in"
        elif op_token.is_keyword("NOT") and self.peek().is_keyword("IN"):
            self.take()
            op = "not in"
        else:
            found = op_token.text or "end of query"
            raise CqlError(f"expected an operator after '{token.text}' but found '{found}'")
        if op not in FIELD_OPS[field]:
            raise CqlError(f"the operator '{op}' is not supported by the field '{token.text}'")
        if op in ("in", "not in"):
            self.expect("(")
            values = [self.value()]
            while self.peek().kind == ",":
                self.take()
                values.append(self.value())
            self.expect(")")
        else:
            values = [self.value()]
        return Clause(field, op, tuple(values))

    def value(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return Value(token.text)
        if token.kind != "word" or token.is_keyword("AND", "OR", "NOT", "ORDER", "IN"):
            found = token.text or "end of query"
            raise CqlError(f"expected a value at position {token.pos} but found '{found}'")
        if self.peek().kind == "(":
            self.take()
            args: list[str] = []
            while self.peek().kind != ")":
                arg = self.take()
                if arg.kind not in ("string", "word"):
                    raise CqlError(f"bad function argument at position {arg.pos}")
                args.append(arg.text)
                if self.peek().kind == ",":
                    self.take()
            self.expect(")")
            return Value(token.text, function=token.text.lower(), args=tuple(args))
        return Value(token.text)


def parse(text: str) -> Query:
    """Parse CQL into a Query AST; raise CqlError with a person-readable detail."""
    return _Parser(text).query()
