"""The where.expression parser (pure): AND over OR, parentheses, case-insensitive keywords."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.sim.expr import ExpressionError, compile_expression, tokenize

ALIASES = ("A", "B", "C")

# A tree is an alias or (op, left, right); rendered with optional parentheses.
trees = st.recursive(
    st.sampled_from(ALIASES),
    lambda inner: st.tuples(st.sampled_from(["AND", "OR", "and", "Or"]), inner, inner),
    max_leaves=8,
)


def render(tree: Any) -> str:
    if isinstance(tree, str):
        return tree
    op, left, right = tree
    return f"({render(left)} {op} {render(right)})"


def evaluate(tree: Any, env: dict[str, bool]) -> bool:
    if isinstance(tree, str):
        return env[tree]
    op, left, right = tree
    if op.upper() == "AND":
        return evaluate(left, env) and evaluate(right, env)
    return evaluate(left, env) or evaluate(right, env)


def terms() -> dict[str, Any]:
    return {a: (lambda r, a=a: r[a]) for a in ALIASES}


@given(trees)
def test_fully_parenthesized_expressions_evaluate_like_python(tree: Any) -> None:
    pred = compile_expression(render(tree), terms())
    for values in itertools.product([False, True], repeat=3):
        env = dict(zip(ALIASES, values, strict=True))
        assert pred(env) is evaluate(tree, env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A OR B AND C", lambda a, b, c: a or (b and c)),
        ("A AND B OR C", lambda a, b, c: (a and b) or c),
        ("(A OR B) AND C", lambda a, b, c: (a or b) and c),
        ("a", lambda a, b, c: a),
        ("", lambda a, b, c: a and b and c),
        (None, lambda a, b, c: a and b and c),
    ],
)
def test_precedence_and_defaults(text: str | None, expected: Any) -> None:
    pred = compile_expression(text, terms())
    for values in itertools.product([False, True], repeat=3):
        assert pred(dict(zip(ALIASES, values, strict=True))) is expected(*values)


@pytest.mark.parametrize(
    "text", ["A AND", "AND A", "A B", "(A", "A)", "()", "D", "A & B", "A OR OR B"]
)
def test_malformed_expressions_raise(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(text, terms())


def test_tokenize() -> None:
    assert tokenize(" (A AND b1) OR c ") == ["(", "A", "AND", "b1", ")", "OR", "c"]
