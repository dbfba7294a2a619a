"""A safe calculator: the expression is parsed by `ast` and only arithmetic nodes are evaluated (never `eval`).

Allowed: numbers, + - * / // % **, unary minus, parentheses, and a few math functions and constants.
Anything else (names, attributes, calls to other functions, strings) is refused with a message the model
can read. Exponents and results are bounded so `9**9**9` cannot hang the loop.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "log": math.log, "log10": math.log10, "exp": math.exp,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "floor": math.floor, "ceil": math.ceil,
    "min": min, "max": max}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 1000
MAX_LENGTH = 500
# Python's big ints hold the GIL while they compute (a tool's time limit cannot stop them) and cannot be
# printed past 4300 digits: results are kept under about 1000 digits, checked before a power is computed.
MAX_DIGITS = 1000


class CalculatorError(ValueError):
    """An expression the calculator refuses; the message says why."""


def calculate(expression: str) -> float | int:
    """Evaluate an arithmetic expression such as "12 * (3 + 4)", "2 ** 10" or "sqrt(16) + 1"."""
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise CalculatorError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"{expression!r} is not an arithmetic expression") from None
    value = _evaluate(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"the exponent {right} is too large (at most {MAX_EXPONENT})")
        if isinstance(node.op, ast.Pow) and isinstance(left, int) and abs(left) > 1 and right > 0 \
                and right * math.log10(abs(left)) > MAX_DIGITS:
            raise CalculatorError("the result is too large")
        try:
            return _bounded(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS \
            and not node.keywords:
        try:
            return _bounded(_FUNCTIONS[node.func.id](*(_evaluate(arg) for arg in node.args)))
        except OverflowError:
            raise CalculatorError(f"{node.func.id}: the number is too large") from None
        except (ValueError, TypeError) as exc:
            raise CalculatorError(f"{node.func.id}: {exc}") from None
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise CalculatorError(f"{ast.unparse(node)!r} is not arithmetic (numbers, + - * / // % **, and {allowed})")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_DIGITS * 3.33:  # log2(10) bits a digit
        raise CalculatorError("the result is too large")
    return value
