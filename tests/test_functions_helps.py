"""Decoding helps (issue 14): what the request says narrows the grammar and fixes copies."""

from __future__ import annotations

import pytest

from llm_playground.functions import load_functions
from llm_playground.functions.helps import call_evidence, iso_date, narrow, request_numbers, snap, snap_strings

LOAN, FORECAST = load_functions([
    {"type": "function", "function": {"name": "loan_payment", "description": "Monthly payment of a loan.",
                                      "parameters": {
        "type": "object", "properties": {
            "principal": {"type": "number"}, "rate": {"type": "number", "description": "Yearly rate as a fraction."},
            "years": {"type": "integer"}, "alpha": {"type": "number", "description": "Significance level."}},
        "required": ["principal", "rate", "years"]}}},
    {"type": "function", "function": {"name": "forecast", "description": "Weather forecast for a city.",
                                      "parameters": {
        "type": "object", "properties": {
            "city": {"type": "string"}, "date": {"type": "string", "description": "Date, YYYY-MM-DD."},
            "units": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit."}},
        "required": ["city"]}}}])


def test_numbers_are_the_requests_with_sign_words_and_rates():
    assert request_numbers("minus 4, -2.5 and seven on 2025-01-26 at 4.5%", fraction=True) == [
        -4.0, -2.5, 2025.0, 1.0, 26.0, 0.045, 7.0]
    assert request_numbers("tax 8.5%", fraction=False) == [8.5]
    narrowed = narrow(LOAN, "Borrow 5000 at 4% for ten years", {"numbers", "optional"})
    assert narrowed.properties["rate"]["enum"] == [5000.0, 0.04, 10.0]
    assert narrowed.properties["years"]["enum"] == [5000, 4, 10]  # "4%" is 4 where no fraction is documented
    assert "alpha" not in narrowed.properties  # optional, not mentioned: not offered at all


def test_optional_and_enum_need_evidence():
    plain = narrow(FORECAST, "Weather in Lima", {"optional", "enums"})
    assert set(plain.properties) == {"city"}
    named = narrow(FORECAST, "Weather in Lima in Fahrenheit", {"optional", "enums"})
    assert named.properties["units"]["enum"] == ["fahrenheit"] and named.required == ["city"]
    assert narrow(FORECAST, "Weather in Lima", ()).properties == FORECAST.properties


@pytest.mark.parametrize(("value", "request_text", "expected"), [
    ("Limba", "Find a flight from Lima to Osaka", "Lima"),
    ("zurich", "Weather in Zürich please", "Zürich"),
    ("d'arcy lee", "Email D'Arcy Lee now", "D'Arcy Lee"),
    ("C:Usersanareport.txt", 'Open "C:\\Users\\ana\\report.txt" now', "C:\\Users\\ana\\report.txt"),
    (" Kindle Paperwhite", "Put seven Kindle Paperwhite in my cart", "Kindle Paperwhite"),
    ("''", "Replace 'a' with ''", ""),
    ("sunny", "Weather in Lima", "sunny"),  # nothing close: kept
])
def test_strings_snap_to_the_request(value, request_text, expected):
    assert snap(value, request_text) == expected


def test_dates_documented_as_iso_and_evidence_for_a_call():
    assert iso_date("June 3", "on June 3, 2025 at noon") == "2025-06-03"
    assert snap_strings({"city": "lima", "date": "Sept 4"}, FORECAST, "Lima on Sep 4th, 2025") == {
        "city": "Lima", "date": "2025-09-04"}
    assert call_evidence("What will the weather be in Lima?", [LOAN, FORECAST]) >= 1
    assert call_evidence("Tell me about the film Don't Look Back.", [LOAN, FORECAST]) == 0
