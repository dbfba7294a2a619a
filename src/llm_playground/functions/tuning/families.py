"""Function families other than regex substitution: arithmetic, strings, people and messages, conversions,
switches. Each is a few definitions (names, descriptions, argument names and types vary) and requests
phrased many ways; the values are drawn at random and copied into the call exactly as the request says."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_playground.functions.tuning.common import Example, Param, Phrasings, define, number, quote, value_for

PEOPLE = ("alice", "bob", "Maria", "li", "Omar", "priya", "Kenji", "sofia", "Lucas", "emma", "noah", "Zara",
          "fatima", "Ivan", "chloe", "Mateo", "aisha", "Tom", "yuki", "Pierre", "nina", "Carlos", "grace", "Ahmed")
WORDS = ("banana", "river", "python", "sunrise", "keyboard", "galaxy", "window", "orange", "guitar", "planet",
         "coffee", "rocket", "garden", "silver", "mountain", "puzzle", "lemon", "thunder", "pencil", "ocean",
         "castle", "violet", "tiger", "cloud", "marble", "forest", "candle", "bridge", "winter", "summer",
         "robot", "anchor", "falcon", "meadow", "pepper", "quartz", "saddle", "tulip", "velvet", "zebra")
MESSAGES = ("see you at noon", "the meeting moved to Friday", "thanks for the help", "dinner is ready",
            "call me back when you can", "the package arrived", "happy birthday", "running ten minutes late",
            "the report is done", "bring an umbrella", "good luck tomorrow", "the train leaves at 7")
CHARS = tuple("aeioulnrstmx")


def word(rng: random.Random) -> str:
    return rng.choice(WORDS)


def phrase(rng: random.Random, low: int = 2, high: int = 5) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))
    return text.capitalize() if rng.random() < 0.5 else text


@dataclass(frozen=True)
class Family:
    key: str
    names: Sequence[str]
    descriptions: Sequence[str]
    params: Sequence[Param]
    returns: str | None
    phrasings: Phrasings
    values: Callable[[random.Random, list[str]], list]  # raw values, given the declared kinds

    def example(self, rng: random.Random, heldout: bool) -> Example:
        definition, arg_names, kinds = define(rng, self.names, self.descriptions, self.params, self.returns)
        raw = self.values(rng, kinds)
        template = self.phrasings.pick(rng, heldout)
        shown = [str(v) for v in raw]
        request = template.format(*shown, q=[quote(rng, s) for s in shown])
        arguments = {a: value_for(k, v) for a, k, v in zip(arg_names, kinds, raw, strict=True)}
        return Example(self.key, definition, request, arguments)


def _numbers(count: int, low: int = 1, high: int = 999) -> Callable[[random.Random, list[str]], list]:
    def values(rng: random.Random, kinds: list[str]) -> list:
        decimals = 0.0 if "integer" in kinds else 0.25
        return [number(rng, low, high, decimals) for _ in range(count)]
    return values


def _texts(*makers: Callable[[random.Random], object]) -> Callable[[random.Random, list[str]], list]:
    return lambda rng, kinds: [make(rng) for make in makers]


NUM2 = (Param(("a", "x", "first", "num1", "left"), "numeric"), Param(("b", "y", "second", "num2", "right"), "numeric"))
NUM1 = (Param(("a", "x", "n", "number", "value"), "numeric"),)
TEXT1 = (Param(("s", "text", "string", "input", "word"), "string"),)

FAMILIES: dict[str, Family] = {f.key: f for f in (
    Family("add", ("fn_add", "add_numbers", "fn_sum", "sum_two", "plus"),
           ("Add two numbers together and return their sum.", "Return a + b.", "Sum of two values."), NUM2,
           "number", Phrasings(["What is the sum of {0} and {1}?", "Add {0} and {1}", "What is {0} plus {1}?",
                                "Compute {0} + {1}", "Please add {0} to {1}", "sum {0} and {1}"],
                               ["How much is {0} added to {1}?", "Total of {0} and {1}, please"]), _numbers(2)),
    Family("subtract", ("fn_subtract", "subtract_numbers", "minus", "difference"),
           ("Subtract b from a.", "Return the difference a - b."), NUM2, "number",
           Phrasings(["What is {0} minus {1}?", "Subtract {1} from {0}", "Compute {0} - {1}",
                      "What is the difference between {0} and {1}?"], ["Take {1} away from {0}"]), _numbers(2)),
    Family("multiply", ("fn_multiply", "multiply_numbers", "product", "times"),
           ("Multiply two numbers.", "Return the product of a and b."), NUM2, "number",
           Phrasings(["What is {0} times {1}?", "Multiply {0} by {1}", "What is the product of {0} and {1}?",
                      "Compute {0} * {1}"], ["{0} multiplied by {1} equals what?"]), _numbers(2, 1, 99)),
    Family("divide", ("fn_divide", "divide_numbers", "quotient"),
           ("Divide a by b.", "Return a divided by b."), NUM2, "number",
           Phrasings(["What is {0} divided by {1}?", "Divide {0} by {1}", "Compute {0} / {1}"],
                     ["Split {0} into {1} equal parts: how big is each?"]), _numbers(2, 1, 500)),
    Family("power", ("fn_power", "raise_to_power", "pow", "exponent"),
           ("Raise a number to a power.", "Return base ** exponent."),
           (Param(("base", "a", "x"), "numeric"), Param(("exponent", "power", "n", "b"), "numeric")), "number",
           Phrasings(["What is {0} to the power of {1}?", "Raise {0} to the power {1}", "Compute {0} ** {1}",
                      "{0} raised to {1}"], ["What do you get with {0} to the {1}th power?"]), _numbers(2, 1, 12)),
    Family("sqrt", ("fn_square_root", "sqrt", "get_sqrt", "fn_root"),
           ("Calculate the square root of a number.", "Return the square root."), NUM1, "number",
           Phrasings(["What is the square root of {0}?", "Calculate the square root of {0}", "sqrt of {0}",
                      "Find the square root of {0}"], ["Give me the root of {0}"]), _numbers(1, 1, 10000)),
    Family("modulo", ("fn_modulo", "remainder", "mod"),
           ("Return the remainder of a divided by b.", "a modulo b."), NUM2, "number",
           Phrasings(["What is {0} modulo {1}?"], ["What is the remainder of {0} divided by {1}?",
                                                   "Compute {0} mod {1}"]), _numbers(2, 1, 999)),
    Family("average", ("fn_average", "mean_of_two", "avg"),
           ("Return the average of two numbers.", "The mean of a and b."), NUM2, "number",
           Phrasings(["What is the average of {0} and {1}?", "Average {0} and {1}", "Mean of {0} and {1}"],
                     ["Find the midpoint between {0} and {1}"]), _numbers(2)),
    Family("absolute", ("fn_abs", "absolute_value"), ("Return the absolute value.",), NUM1, "number",
           Phrasings(["What is the absolute value of {0}?", "abs of {0}"],
                     ["How far is {0} from zero?"]), _numbers(1)),
    Family("factorial", ("fn_factorial", "factorial"), ("Return n! for a whole number n.",),
           (Param(("n", "number", "k"), "integer"),), "integer",
           Phrasings(["What is the factorial of {0}?", "Compute {0}!", "factorial of {0}"],
                     ["Multiply all whole numbers from 1 up to {0}"]), _numbers(1, 1, 20)),
    Family("reverse", ("fn_reverse", "reverse_string", "fn_reverse_text", "flip"),
           ("Reverse a string and return the reversed result.", "Return the text backwards."), TEXT1, "string",
           Phrasings(["Reverse the string {q[0]}", "Reverse {q[0]}", "Write {q[0]} backwards",
                      "Reverse the word {q[0]}", "Please reverse {0}"], ["Spell {q[0]} from the end"]),
           _texts(word)),
    Family("upper", ("fn_upper", "to_uppercase", "shout", "make_upper"),
           ("Convert text to upper case.", "Return the string in capitals."), TEXT1, "string",
           Phrasings(["Convert {q[0]} to uppercase", "Make {q[0]} upper case", "Uppercase the text {q[0]}",
                      "Write {q[0]} in capital letters"], ["Turn {q[0]} into all caps"]), _texts(phrase)),
    Family("lower", ("fn_lower", "to_lowercase", "make_lower"),
           ("Convert text to lower case.", "Return the string in small letters."), TEXT1, "string",
           Phrasings(["Convert {q[0]} to lowercase", "Make {q[0]} lower case", "Lowercase {q[0]}"],
                     ["Remove the capitals from {q[0]}"]), _texts(lambda r: phrase(r).upper())),
    Family("length", ("fn_length", "string_length", "count_characters", "len"),
           ("Return the number of characters in a string.", "Length of the text."), TEXT1, "integer",
           Phrasings(["How long is the string {q[0]}?", "What is the length of {q[0]}?",
                      "Count the characters in {q[0]}"], ["How many letters does {q[0]} have?"]),
           _texts(word)),
    Family("count_char", ("fn_count_char", "count_letter", "occurrences"),
           ("Count how many times a character appears in a text.",),
           (Param(("text", "s", "string"), "string"), Param(("char", "letter", "c"), "string")), "integer",
           Phrasings(["How many times does {q[1]} appear in {q[0]}?"],
                     ["Count the letter {q[1]} in {q[0]}", "Number of {q[1]} characters in {q[0]}"]),
           _texts(phrase, lambda r: r.choice("aeioulnrst"))),
    Family("repeat", ("fn_repeat", "repeat_string", "duplicate"),
           ("Repeat a string n times.", "Return text repeated count times."),
           (Param(("text", "s", "string"), "string"), Param(("times", "n", "count"), "integer")), "string",
           Phrasings(["Repeat {q[0]} {1} times", "Write {q[0]} {1} times", "Say {q[0]} {1} times over"],
                     ["I want {q[0]} repeated {1} times"]), lambda r, k: [word(r), number(r, 1, 9)]),
    Family("concat", ("fn_concat", "join_strings", "concatenate"),
           ("Join two strings.", "Return a followed by b."),
           (Param(("a", "first", "left", "s1"), "string"), Param(("b", "second", "right", "s2"), "string")),
           "string", Phrasings(["Concatenate {q[0]} and {q[1]}", "Join {q[0]} with {q[1]}",
                                "Put {q[0]} and {q[1]} together"], ["Glue {q[1]} onto the end of {q[0]}"]),
           _texts(word, word)),
    Family("greet", ("fn_greet", "greet", "say_hello", "welcome"),
           ("Generate a greeting message for a person by name.", "Say hello to someone."),
           (Param(("name", "person", "who", "username"), "string"),), "string",
           Phrasings(["Greet {0}", "Say hello to {0}", "Greet {q[0]}", "Please greet {0}", "Welcome {0}"],
                     ["Give {0} a warm hello"]), _texts(lambda r: r.choice(PEOPLE))),
    Family("email", ("send_email", "fn_send_email", "email"),
           ("Send an email to a person.", "Email someone a message."),
           (Param(("to", "recipient", "name"), "string"), Param(("body", "message", "text"), "string")), None,
           Phrasings(["Send an email to {0} saying {q[1]}", "Email {0}: {q[1]}", "Write to {0} by email: {1}"],
                     ["Drop {0} a mail that says {q[1]}"]), _texts(lambda r: r.choice(PEOPLE),
                                                                    lambda r: r.choice(MESSAGES))),
    Family("message", ("send_message", "fn_text", "sms"),
           ("Send a text message to a person.",),
           (Param(("name", "to", "contact"), "string"), Param(("text", "message", "content"), "string")), None,
           Phrasings(["Text {0} {q[1]}"], ["Send a message to {0} saying {q[1]}", "Tell {0} {q[1]} by SMS"]),
           _texts(lambda r: r.choice(PEOPLE), lambda r: r.choice(MESSAGES))),
    Family("celsius", ("celsius_to_fahrenheit", "fn_c_to_f", "to_fahrenheit"),
           ("Convert a temperature from Celsius to Fahrenheit.",),
           (Param(("celsius", "degrees", "temp", "c"), "numeric"),), "number",
           Phrasings(["Convert {0} degrees Celsius to Fahrenheit", "What is {0}C in Fahrenheit?",
                      "{0} celsius in fahrenheit"], ["How warm is {0} degrees C on the Fahrenheit scale?"]),
           _numbers(1, 1, 200)),
    Family("km_miles", ("km_to_miles", "fn_kilometers_to_miles"), ("Convert kilometers to miles.",),
           (Param(("km", "kilometers", "distance"), "numeric"),), "number",
           Phrasings(["Convert {0} km to miles"], ["How many miles is {0} kilometers?", "{0} kilometres in miles"]),
           _numbers(1, 1, 900)),
    Family("currency", ("convert_currency", "fn_exchange"), ("Convert an amount between currencies.",),
           (Param(("amount", "value"), "numeric"), Param(("source", "from_currency"), "string"),
            Param(("target", "to_currency"), "string")), "number",
           Phrasings(["Convert {0} {1} to {2}", "How much is {0} {1} in {2}?", "Exchange {0} {1} into {2}"],
                     ["I have {0} {1}; what is that in {2}?"]),
           lambda r, k: [number(r, 1, 900, 0.0 if k[0] == "integer" else 0.2), *r.sample(
               ["USD", "EUR", "GBP", "JPY", "CHF", "CAD"], 2)]),
    Family("light", ("set_light", "toggle_lamp", "switch_light"), ("Turn the light of a room on or off.",),
           (Param(("room", "place"), "string"), Param(("on", "enabled", "state"), "boolean")), None,
           Phrasings(["Turn {1} the light in the {0}", "Switch {1} the {0} light", "Lights {1} in the {0}"],
                     ["Please flip the {0} lamp {1}"]),
           lambda r, k: [r.choice(["kitchen", "bedroom", "garage", "office", "hall"]), r.choice(["on", "off"])]),
)}

HELDOUT_FAMILIES = frozenset({"modulo", "count_char", "message", "km_miles"})
