"""Decoding helps: what the request itself says, used to narrow the grammar and to check the call.

A 135M model invents values and mangles copies; the request holds the evidence to stop both. Each help
is switchable (`call_functions(..., helps=...)`) and was measured alone on the catalog's tuning split
(benchmarks/functions.py reports them on the held-out split):

- `no_call`: under tool_choice "auto", call a function only when the request shares a content word with
  a function's name, description or parameters; otherwise answer with no call (the grammar's null
  option chosen by the model is not a reliable judge: it calls almost always);
- `optional`: an optional parameter stays in the grammar only with evidence in the request (its name or
  description shares a content word with it, or one of its enum values is named);
- `numbers`: a number parameter may only take a number the request writes (with its sign, "minus 4",
  number words, and "4.5%" as 0.045 where the parameter documents a fraction);
- `enums`: an enum is cut to the values the request names (all of them when it names none);
- `spans`: a decoded string that is not in the request is snapped back to the request's closest span
  (quoted text first), so case, quotes, backslashes and diacritics come out as written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from llm_playground.functions.schema import FunctionSpec

ALL = frozenset({"no_call", "optional", "numbers", "enums", "spans"})
DEFAULT = ALL

_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen twenty").split()
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
         "hundred": 100}
_NUMBER = re.compile(r"(?<![\w.])(?:(minus|negative)\s+|(-))?(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(\s*%|\s+percent)?",
                     re.I)
_FRACTION = re.compile(r"fraction|0\.\d+ (?:for|means|is) \d|as a decimal|between 0 and 1", re.I)
_QUOTED = re.compile(r"(?<!\w)'([^']*)'(?!\w)|\"([^\"]*)\"|`([^`]*)`|«([^»]*)»|“([^”]*)”")
# Words too common to be evidence that a request is about a function.
STOPWORDS = frozenset("""
a an the and or but if of to in on at by for with from into onto over under about as is are was were be been
being do does did have has had i me my we our you your it its this that these those there here what which who
whom whose when where why how much many any some all each every no not yes please could would should can
will shall may might must need want like get give make tell show find let know see look put take use using
just also then than too very really now new out up down off one two three four five more most less few
thing things way something someone default optional number numbers value values given name names text
return returns function kind type list via per each first second etc e.g ie
""".split())


def content_words(text: str) -> set[str]:
    """Lower-case word stems (five letters) of a text, without stopwords and short words."""
    words = re.findall(r"[^\W\d_]+", text.replace("_", " ").lower())
    return {w[:5] for w in words if len(w) > 2 and w not in STOPWORDS}


def function_words(spec: FunctionSpec) -> set[str]:
    parts = [spec.name, spec.description]
    for name, schema in spec.properties.items():
        parts += [name, str(schema.get("description", ""))]
    return content_words(" ".join(parts))


def call_evidence(request: str, functions: Sequence[FunctionSpec]) -> int:
    """How many content words the request shares with the best-matching function."""
    words = content_words(_QUOTED.sub(" ", request))
    return max((len(words & function_words(f)) for f in functions), default=0)


# ---------------------------------------------------------------- numbers
def request_numbers(request: str, fraction: bool) -> list[float]:
    """The numbers a request writes, as the call could hold them."""
    found: list[float] = []
    for match in _NUMBER.finditer(request):
        word_sign, dash, digits, percent = match.groups()
        if dash and match.start() > 0 and request[match.start() - 1].isalnum():
            dash = None  # a date's or a range's dash, not a sign
        value = float(digits.replace(",", ""))
        if word_sign or dash:
            value = -value
        if percent and fraction:
            value = round(value / 100, 10)
        found.append(value)
    lowered = request.lower()
    for i, word in enumerate(_WORDS):
        if re.search(rf"\b{word}\b", lowered):
            found.append(float(i))
    found += [float(v) for w, v in _TENS.items() if re.search(rf"\b{w}\b", lowered)]
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------- narrowing the grammar
def narrow(spec: FunctionSpec, request: str, helps: Iterable[str]) -> FunctionSpec:
    """`spec` with its parameters' schemas cut to what the request gives evidence for."""
    helps = frozenset(helps)
    words = content_words(request)
    lowered = request.lower()
    properties: dict[str, dict[str, Any]] = {}
    for name, schema in spec.properties.items():
        named = _named_enum_values(schema, lowered)
        if "optional" in helps and name not in spec.required:
            own = content_words(f"{name} {schema.get('description', '')}")
            if not (words & own or named):
                continue
        if "enums" in helps and named and schema.get("enum"):
            schema = {**schema, "enum": named}
        if "numbers" in helps and schema.get("type") in ("number", "integer") and "enum" not in schema:
            fraction = bool(_FRACTION.search(str(schema.get("description", "")) + " " + spec.description))
            options = request_numbers(request, fraction)
            if schema["type"] == "integer":
                options = [int(v) for v in options if float(v).is_integer()]
            if options:
                schema = {k: v for k, v in schema.items() if k not in ("minimum", "maximum")}
                schema["enum"] = options
        properties[name] = schema
    parameters = {**spec.parameters, "properties": properties,
                  "required": [r for r in spec.required if r in properties]}
    return spec.model_copy(update={"parameters": parameters})


def _named_enum_values(schema: dict[str, Any], lowered: str) -> list[Any]:
    values = schema.get("enum") or []
    return [v for v in values if isinstance(v, str) and re.search(rf"\b{re.escape(v.lower()[:5])}", lowered)]


# ---------------------------------------------------------------- copying strings
_ISO_DOC = re.compile(r"YYYY-MM-DD|ISO 8601|ISO date", re.I)
_MONTHS = ("january february march april may june july august september october november december").split()
_LONG_DATE = re.compile(r"\b(" + "|".join(m[:3] for m in _MONTHS)
                        + r")[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.I)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_date(value: str, request: str) -> str:
    """A date parameter documented as YYYY-MM-DD, taken from the request's "June 3, 2025" when it has one."""
    if _ISO.match(value):
        return value
    match = _LONG_DATE.search(request)
    if match is None:
        return value
    month = [m[:3] for m in _MONTHS].index(match.group(1).lower()[:3]) + 1
    return f"{int(match.group(3)):04d}-{month:02d}-{int(match.group(2)):02d}"


def snap_strings(arguments: dict[str, Any], spec: FunctionSpec, request: str) -> dict[str, Any]:
    """Each free string argument that the request does not contain, replaced by its closest span."""
    out = {}
    for name, value in arguments.items():
        schema = spec.properties.get(name, {})
        if isinstance(value, str) and "enum" not in schema:
            value = iso_date(value, request) if _ISO_DOC.search(str(schema.get("description", ""))) else value
            value = snap(value, request)
        elif isinstance(value, list) and schema.get("items", {}).get("type") == "string":
            value = [snap(v, request) if isinstance(v, str) else v for v in value]
        elif isinstance(value, dict):
            nested = FunctionSpec(name="nested", parameters={"type": "object",
                                                             "properties": schema.get("properties", {})})
            value = snap_strings(value, nested, request)
        out[name] = value
    return out


def snap(value: str, request: str, threshold: float = 0.75) -> str:
    if value in ("''", '""'):
        value = ""
    if value.strip() and value.strip() in request:
        value = value.strip()
    if not value or value in request:
        return value
    at = request.lower().find(value.lower())
    if at >= 0:
        return request[at:at + len(value)]
    candidates = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(request)]
    tokens = list(re.finditer(r"\S+", request))
    width = len(value.split())
    for n in range(max(1, width - 2), width + 3):
        for i in range(len(tokens) - n + 1):
            span = request[tokens[i].start():tokens[i + n - 1].end()]
            candidates.append(span.strip(".,;:!?\"'`()"))
    best, score = value, threshold
    for candidate in candidates:
        ratio = difflib.SequenceMatcher(None, value.lower(), candidate.lower()).ratio()
        if ratio > score:
            best, score = candidate, ratio
    return best
