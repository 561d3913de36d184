"""The ``where.expression`` language: aliases joined by AND/OR, with parentheses (pure).

AND binds tighter than OR; keywords are case-insensitive. Without an expression every
condition must hold (AND of all aliases, in order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9_]+)")


class ExpressionError(ValueError):
    """The expression cannot be parsed or names an alias with no condition."""


def tokenize(text: str) -> list[str]:
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExpressionError(f"unexpected character {text[pos:].strip()[:1]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def compile_expression(text: str | None, terms: Mapping[str, Predicate]) -> Predicate:
    """Combine the alias predicates ``terms`` (keyed by upper-case alias) as ``text`` says;
    aliases match case-insensitively."""
    if not text or not text.strip():
        preds = list(terms.values())
        return lambda r: all(p(r) for p in preds)
    tokens = tokenize(text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ExpressionError("expression ends too early")
        pos += 1
        return tokens[pos - 1]

    def parse_or() -> Predicate:
        parts = [parse_and()]
        while (t := peek()) is not None and t.upper() == "OR":
            take()
            parts.append(parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda r: any(p(r) for p in parts)

    def parse_and() -> Predicate:
        parts = [parse_atom()]
        while (t := peek()) is not None and t.upper() == "AND":
            take()
            parts.append(parse_atom())
        if len(parts) == 1:
            return parts[0]
        return lambda r: all(p(r) for p in parts)

    def parse_atom() -> Predicate:
        token = take()
        if token == "(":  # noqa: S105  # a parenthesis, not a password
            inner = parse_or()
            if take() != ")":
                raise ExpressionError("missing ')'")
            return inner
        if token == ")" or token.upper() in ("AND", "OR"):  # noqa: S105  # a parser token, not a password
            raise ExpressionError(f"unexpected {token!r}")
        pred = terms.get(token.upper())
        if pred is None:
            raise ExpressionError(f"alias {token!r} has no condition")
        return pred

    result = parse_or()
    if pos != len(tokens):
        raise ExpressionError(f"unexpected {tokens[pos]!r}")
    return result
