"""Regex substitution requests: common idioms (numbers → `\\d+`, vowels → `[aeiouAEIOU]`, "the word X" →
`\\bX\\b`, …), each named several ways, in sentences phrased many ways, with replacements written as
quoted text, bare words or names of symbols ("with asterisks" → `*`)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from llm_playground.functions.tuning.common import Example, Param, Phrasings, define, quote
from llm_playground.functions.tuning.families import PEOPLE, WORDS, phrase, word

CONSONANTS = "[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]"
CONTRACTIONS = ("I'm", "it's", "don't", "we're", "that's", "can't", "you're")


def _with_numbers(rng: random.Random) -> str:
    parts = [rng.choice(WORDS) for _ in range(rng.randint(3, 6))]
    for _ in range(rng.randint(1, 3)):
        parts.insert(rng.randrange(len(parts) + 1), str(rng.choice((rng.randint(4, 99), rng.randint(100, 9999)))))
    if rng.random() < 0.3:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(CONTRACTIONS))
    text = " ".join(parts)
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def _with_spaces(rng: random.Random) -> str:
    return "".join(w + " " * rng.choice((1, 2, 3)) for w in phrase(rng, 3, 5).split()).strip()


def _with_punctuation(rng: random.Random) -> str:
    words = phrase(rng, 3, 6).split()
    return " ".join(w + rng.choice(("", "", ",", "!", "?", ".", ";")) for w in words)


def _with_word(target: str) -> Callable[[random.Random], str]:
    def make(rng: random.Random) -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 6))]
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randrange(len(words) + 1), target)
        return " ".join(words).capitalize() if rng.random() < 0.5 else " ".join(words)
    return make


def _with_emails(rng: random.Random) -> str:
    who = rng.choice(PEOPLE).lower()
    return f"write to {who}@{rng.choice(WORDS)}.com about the {rng.choice(WORDS)}"


def _with_tags(rng: random.Random) -> str:
    return f"{phrase(rng, 2, 3)} #{rng.choice(WORDS)} #{rng.choice(WORDS)}"


def _padded(rng: random.Random) -> str:
    return " " * rng.randint(1, 3) + phrase(rng) + " " * rng.randint(1, 3)


def idiom(rng: random.Random) -> tuple[str, str, str]:
    """(how the request names what to match, the regex, a source string with matches)."""
    kind = rng.choice(("digits", "digits", "digits", "vowels", "vowels", "vowels", "consonants", "whitespace",
                       "spaces", "punctuation", "upper", "lower", "letters", "nonalnum", "word", "word", "word",
                       "word", "starts", "ends", "literal", "literal", "letter", "emails", "tags", "trailing",
                       "leading"))
    w = word(rng)
    if kind == "digits":
        return rng.choice(("numbers", "digits", "the numbers", "numeric values", "number sequences")), r"\d+", \
            _with_numbers(rng)
    if kind == "vowels":
        return rng.choice(("vowels", "the vowels", "vowel letters")), "[aeiouAEIOU]", phrase(rng)
    if kind == "consonants":
        return rng.choice(("consonants", "the consonants")), CONSONANTS, phrase(rng)
    if kind == "whitespace":
        return rng.choice(("whitespace", "runs of whitespace", "blank space")), r"\s+", _with_spaces(rng)
    if kind == "spaces":
        return rng.choice(("repeated spaces", "double spaces", "multiple spaces")), " {2,}", _with_spaces(rng)
    if kind == "punctuation":
        return rng.choice(("punctuation", "punctuation marks")), r"[^\w\s]", _with_punctuation(rng)
    if kind == "upper":
        return rng.choice(("uppercase letters", "capital letters")), "[A-Z]", phrase(rng).title()
    if kind == "lower":
        return rng.choice(("lowercase letters", "small letters")), "[a-z]", phrase(rng).title()
    if kind == "letters":
        return rng.choice(("letters", "alphabetic characters")), "[a-zA-Z]", _with_numbers(rng)
    if kind == "nonalnum":
        return "non-alphanumeric characters", "[^a-zA-Z0-9]", _with_punctuation(rng)
    if kind == "word":
        name = rng.choice(("the word {}", "the word {}", "the whole word {}", "occurrences of the word {}"))
        return name.format(quote(rng, w) if rng.random() < 0.8 else w), rf"\b{w}\b", _with_word(w)(rng)
    if kind == "starts":
        stem = w[:rng.randint(1, 3)]
        name = rng.choice(("words starting with {}", "words that begin with {}"))
        return name.format(quote(rng, stem)), rf"\b{stem}\w*", _with_word(w)(rng)
    if kind == "ends":
        tail = w[-rng.randint(1, 3):]
        name = rng.choice(("words ending with {}", "words that end in {}"))
        return name.format(quote(rng, tail)), rf"\w*{tail}\b", _with_word(w)(rng)
    if kind == "literal":
        return quote(rng, w), re.escape(w), _with_word(w)(rng)
    if kind == "letter":
        letter = rng.choice("aeiorstlnm")
        name = rng.choice(("the letter {}", "every letter {}", "each {}"))
        return name.format(quote(rng, letter)), letter, phrase(rng)
    if kind == "emails":
        return rng.choice(("email addresses", "emails")), r"\S+@\S+", _with_emails(rng)
    if kind == "tags":
        return "hashtags", r"#\w+", _with_tags(rng)
    if kind == "trailing":
        return "trailing whitespace", r"\s+$", _padded(rng)
    return "leading whitespace", r"^\s+", _padded(rng)


SYMBOLS = {"asterisks": "*", "stars": "*", "dashes": "-", "hyphens": "-", "underscores": "_", "hash signs": "#",
           "dots": ".", "a space": " ", "a single space": " ", "nothing": "", "an empty string": ""}


def replacement(rng: random.Random) -> tuple[str, str]:
    """(how the request says it, the replacement string)."""
    style = rng.random()
    if style < 0.35:
        name, value = rng.choice(list(SYMBOLS.items()))
        return name, value
    if style < 0.7:
        value = rng.choice((word(rng), word(rng).upper(), rng.choice("X#*-_?"), f"<{word(rng)}>"))
        return quote(rng, value), value
    value = rng.choice(("NUM", "NUMBER", "REDACTED", "X", "BLANK", "HIDDEN", "TAG", word(rng).upper()))
    return value, value


PHRASINGS = Phrasings(
    ["Replace all {target} in {src} with {rep}", "Replace every {target} in {src} with {rep}",
     "Substitute {target} with {rep} in {src}", "In {src}, replace {target} with {rep}",
     "Change all {target} in {src} to {rep}", "Swap {target} for {rep} in {src}",
     "Replace {target} in the string {src} with {rep}", "Substitute all {target} in {src} with {rep}",
     "Replace {target} with {rep} in {src}"],
    ["Turn every {target} in {src} into {rep}", "Within {src}, substitute {target} by {rep}",
     "Use a regex to change {target} to {rep} in {src}"])
REMOVALS = Phrasings(["Remove all {target} from {src}", "Delete every {target} in {src}"],
                     ["Strip {target} out of {src}"])

PARAMS = (Param(("source_string", "text", "s", "input", "string"), "string"),
          Param(("regex", "pattern", "expr"), "string"),
          Param(("replacement", "repl", "replace_with", "new"), "string"))


def example(rng: random.Random, heldout: bool) -> Example:
    order = list(range(3))
    if rng.random() < 0.25:
        rng.shuffle(order)
    params = [PARAMS[i] for i in order]
    definition, arg_names, _ = define(
        rng, ("fn_substitute_string_with_regex", "regex_replace", "fn_replace_pattern", "substitute", "re_sub",
              "replace_matches"),
        ("Replace all occurrences matching a regex pattern in a string.", "Substitute regex matches in text.",
         "Return the text with every match of the pattern replaced."), params, "string")
    target, pattern, source = idiom(rng)
    if rng.random() < 0.12:
        rep_text, rep = "", ""
        template = REMOVALS.pick(rng, heldout)
    else:
        rep_text, rep = replacement(rng)
        template = PHRASINGS.pick(rng, heldout)
    request = template.format(target=target, src=quote(rng, source), rep=rep_text)
    values = [source, pattern, rep]
    return Example("regex", definition, request, {arg_names[k]: values[i] for k, i in enumerate(order)})
