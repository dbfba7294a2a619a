"""A catalog of function sets in many domains, for measuring calls on APIs the adapter never saw.

Each set is one to three functions in the OpenAI tools format, with request templates of our own
sentence shapes (never the course's public prompts' shapes, never a published benchmark's items). The
values a request writes are drawn at random as (surface text, call value) pairs, so the request can say
"seven", "-12", "4.5%", "in Fahrenheit" or "Paris, Rome and Oslo" while the call holds 7, -12, 0.045,
"fahrenheit" or ["Paris", "Rome", "Oslo"]. Optional parameters are mentioned by some templates and not by
others; an optional parameter a request does not mention must be left out of the call.

Sets are split by family: `HELDOUT` sets are only ever evaluated (no rule, threshold or training example
comes from them); the others are the tuning split. `cases()` draws seeded single-call, irrelevant
("no function fits") and parallel requests from one split; `bfcl.py` writes them as BFCL file pairs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_playground.functions.bfcl import BfclItem

Gen = Callable[[random.Random], tuple[Any, Any]]  # → (what the request writes, what the call holds)

# ---------------------------------------------------------------- value pools (diverse on purpose)
CITIES = ("Zürich", "São Paulo", "Kraków", "Reykjavík", "Cape Town", "Montréal", "Nairobi", "Osaka", "Lima",
          "Ho Chi Minh City", "Düsseldorf", "Medellín", "St. John's", "Bergen", "Marrakesh", "Tbilisi")
PEOPLE = ("Siobhan O'Neill", "José Núñez", "Zoë Brandt", "Ngozi Okafor", "D'Arcy Lee", "Łukasz Wróbel",
          "Mei-Ling Chen", "Ólafur Arnalds", "Renée Dubois", "Björn Åkesson", "Amara Diallo", "Tomás O'Hara")
TITLES = ('The "Quiet" Year', "Don't Look Back", "Café Society", "Notes from Underground", "The Ninth Wave",
          "iOS Design Basics", "Ünder the Bridge", "Rock 'n' Roll Days", "A Tale of Two Cities", "McKinsey Way")
PATHS = ("C:\\Users\\ana\\report v2.txt", "D:\\backup\\2024\\photos", "/var/log/nginx/error.log",
         "C:\\Program Files\\Tool\\config.ini", "~/Documents/tax return.pdf", "\\\\server\\share\\plan.xlsx")
PHRASES = ('say "cheese"', "it's raining again", "naïve café", "MiXeD CaSe Text", "déjà vu all over",
           "50% off today", "back\\slash test", "emoji ☕ time", "Grüße aus Köln", "C'est la vie")
PRODUCTS = ("iPhone 15 Pro", "ThinkPad X1", "Nespresso Vertuo", "LEGO Technic 42115", "Kindle Paperwhite",
            "Dyson V15", "Galaxy S24 Ultra", "Café Bustelo")
TEAMS = ("Real Madrid", "Borussia Dortmund", "Boca Juniors", "AC Milan", "Paris Saint-Germain", "Ajax")
INGREDIENTS = ("chickpeas", "crème fraîche", "jalapeños", "basil", "tofu", "gruyère", "saffron", "lentils")
LANGS = {"french": ("French", "français"), "german": ("German", "Deutsch"), "spanish": ("Spanish", "español"),
         "japanese": ("Japanese", "nihongo")}
WORDS_1_20 = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
              "seventeen eighteen nineteen twenty").split()


def pick(pool: tuple[str, ...]) -> Gen:
    return lambda rng: (lambda v: (v, v))(rng.choice(pool))


def integer(low: int, high: int, words: float = 0.0, negative: float = 0.0) -> Gen:
    def gen(rng: random.Random) -> tuple[str, int]:
        value = rng.randint(low, high)
        if rng.random() < negative:
            value = -value
            return (f"minus {abs(value)}" if rng.random() < 0.3 else str(value)), value
        if 1 <= value <= 20 and rng.random() < words:
            return WORDS_1_20[value - 1], value
        return str(value), value
    return gen


def decimal(low: float, high: float, places: int = 2, negative: float = 0.0) -> Gen:
    def gen(rng: random.Random) -> tuple[str, float]:
        value = round(rng.uniform(low, high), rng.choice((0, 1, places)))
        if rng.random() < negative:
            value = -value
        text = f"{value:g}" if abs(value) < 1e6 else str(value)
        return text, float(text)
    return gen


def rate(low: float, high: float) -> Gen:
    """A percentage the request writes ("4.5%", "4.5 percent") for a parameter documented as a fraction."""
    def gen(rng: random.Random) -> tuple[str, float]:
        percent = round(rng.uniform(low, high), rng.choice((0, 1)))
        text = f"{percent:g}"
        return (f"{text}%" if rng.random() < 0.7 else f"{text} percent"), round(float(text) / 100, 6)
    return gen


def percent(low: int, high: int) -> Gen:
    """A percentage for a parameter documented in percent (0–100): the call keeps the number."""
    return lambda rng: (lambda v: (f"{v}%", float(v)))(rng.randint(low, high))


def choice(options: Mapping[str, tuple[str, ...]]) -> Gen:
    """An enum value said one of several ways."""
    def gen(rng: random.Random) -> tuple[str, str]:
        value = rng.choice(sorted(options))
        return rng.choice(options[value]), value
    return gen


def listing(pool: tuple[str, ...], low: int = 2, high: int = 4) -> Gen:
    def gen(rng: random.Random) -> tuple[str, list[str]]:
        items = rng.sample(pool, rng.randint(low, high))
        return ", ".join(items[:-1]) + " and " + items[-1], items
    return gen


def date(rng: random.Random) -> tuple[str, str]:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    names = "January February March April May June July August September October November December".split()
    iso = f"2025-{month:02d}-{day:02d}"
    return (iso if rng.random() < 0.5 else f"{names[month - 1]} {day}, 2025"), iso


def nested(**parts: Gen) -> Gen:
    def gen(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
        drawn = {k: g(rng) for k, g in parts.items()}
        return {k: s for k, (s, _) in drawn.items()}, {k: v for k, (_, v) in drawn.items()}
    return gen


# ---------------------------------------------------------------- the DSL
@dataclass(frozen=True)
class Arg:
    schema: dict[str, Any]
    gen: Gen
    required: bool = True


def arg(kind: str, description: str, gen: Gen, /, *, required: bool = True, **extra: Any) -> Arg:
    return Arg({"type": kind, "description": description, **extra}, gen, required)


@dataclass(frozen=True)
class Fn:
    name: str
    description: str
    args: dict[str, Arg]
    templates: tuple[str, ...]

    def tool(self) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": {"type": "object", "properties": {k: a.schema for k, a in self.args.items()},
                           "required": [k for k, a in self.args.items() if a.required]}}}


@dataclass(frozen=True)
class FunctionSet:
    key: str
    domain: str
    functions: tuple[Fn, ...]


def fn(name: str, description: str, templates: tuple[str, ...] | list[str], /, **args: Arg) -> Fn:
    return Fn(name, description, args, tuple(templates))


S = FunctionSet
C_WEATHER = {"celsius": ("in Celsius", "in degrees C", "using centigrade"),
             "fahrenheit": ("in Fahrenheit", "in degrees F", "the American way (Fahrenheit)")}

SETS: tuple[FunctionSet, ...] = (
    # ---------------------------------------------------------------- science and maths
    S("kinematics", "physics", (fn(
        "final_velocity", "Final velocity of an object under constant acceleration, in m/s.",
        ["An object starts at {initial_velocity} m/s and accelerates at {acceleration} m/s² for {time} seconds: "
         "how fast is it going at the end?",
         "Starting speed {initial_velocity} m/s, acceleration {acceleration} m/s², duration {time} s. Final speed?"],
        initial_velocity=arg("number", "Initial velocity in m/s.", decimal(0, 40)),
        acceleration=arg("number", "Acceleration in m/s²; negative when slowing.", decimal(1, 12, negative=0.4)),
        time=arg("number", "Elapsed time in seconds.", decimal(1, 30))),)),
    S("ohms_law", "physics", (fn(
        "electric_current", "Current through a resistor from voltage and resistance (Ohm's law).",
        ["A {voltage} volt source drives a {resistance} ohm resistor; what current flows?",
         "Find the amperage for {resistance} Ω at {voltage} V."],
        voltage=arg("number", "Voltage in volts.", decimal(1, 240)),
        resistance=arg("number", "Resistance in ohms.", decimal(1, 1000))),)),
    S("chemistry", "chemistry", (fn(
        "molar_mass", "Molar mass of a chemical formula in g/mol.",
        ["I need the molar mass of {formula}.", "How many grams per mole does {formula} weigh?"],
        formula=arg("string", "Chemical formula, e.g. H2O.", pick(("C6H12O6", "NaCl", "H2SO4", "CaCO3",
                                                                      "C2H5OH", "KMnO4", "NH4NO3")))),
        fn("dilution_volume", "Volume of stock solution needed for a dilution (C1V1 = C2V2), in litres.",
           ["From a {stock_molarity} M stock, how much do I need to make {target_volume} L at "
            "{target_molarity} M?"],
           stock_molarity=arg("number", "Stock concentration in mol/L.", decimal(1, 18)),
           target_molarity=arg("number", "Target concentration in mol/L.", decimal(0.1, 0.9)),
           target_volume=arg("number", "Target volume in litres.", decimal(0.5, 5))))),
    S("statistics", "statistics", (fn(
        "t_test", "Two-sample t-test on two lists of measurements.",
        ["Run a t-test comparing {sample_a} against {sample_b}.",
         "Are {sample_a} and {sample_b} significantly different at alpha {alpha}?"],
        sample_a=arg("array", "First sample.", lambda r: (lambda v: ("[" + ", ".join(map(str, v)) + "]", v))(
            [r.randint(1, 60) for _ in range(r.randint(3, 5))]), items={"type": "integer"}),
        sample_b=arg("array", "Second sample.", lambda r: (lambda v: ("[" + ", ".join(map(str, v)) + "]", v))(
            [r.randint(1, 60) for _ in range(r.randint(3, 5))]), items={"type": "integer"}),
        alpha=arg("number", "Significance level; default 0.05.", pick(("0.01", "0.1")), required=False,
                  default=0.05)),)),
    S("geometry", "maths", (fn(
        "cylinder_volume", "Volume of a cylinder from its radius and height.",
        ["A tank is a cylinder {radius} m across the radius and {height} m tall. What volume does it hold?",
         "cylinder: r={radius}, h={height} -> volume please"],
        radius=arg("number", "Radius.", decimal(0.5, 20)), height=arg("number", "Height.", decimal(1, 50))),
        fn("triangle_area", "Area of a triangle from its base and height.",
           ["Triangle with a base of {base} cm and a height of {height} cm: area?"],
           base=arg("number", "Base length.", decimal(1, 90)), height=arg("number", "Height.", decimal(1, 90))))),
    S("number_theory", "maths", (fn(
        "gcd", "Greatest common divisor of two integers.",
        ["What's the largest number dividing both {a} and {b}?", "gcd({a}, {b}) — compute it for me"],
        a=arg("integer", "First integer.", integer(12, 9000)), b=arg("integer", "Second integer.", integer(12, 9000))),
        fn("is_prime", "Check whether an integer is prime.", ["Tell me if {n} is a prime."],
           n=arg("integer", "The number to test.", integer(2, 100000))))),
    S("units", "conversion", (fn(
        "convert_length", "Convert a length between units.",
        ["How much is {value} {from_unit} expressed {to_unit}?", "Turn {value} {from_unit} into {to_unit}."],
        value=arg("number", "The length.", decimal(1, 500)),
        from_unit=arg("string", "Unit of the value.", choice({"meters": ("meters", "metres"), "feet": ("feet",),
                                                              "inches": ("inches",)}),
                      enum=["meters", "feet", "inches", "miles"]),
        to_unit=arg("string", "Unit to convert to.", choice({"miles": ("in miles", "as miles"),
                                                             "kilometers": ("in kilometers", "in km")}),
                    enum=["miles", "kilometers"])),)),
    S("thermo", "conversion", (fn(
        "convert_temperature", "Convert a temperature to another scale.",
        ["It's {value} degrees Celsius outside — what is that {scale}?", "Express {value} °C {scale}."],
        value=arg("number", "Temperature in Celsius (can be negative).", integer(1, 40, negative=0.5)),
        scale=arg("string", "Target scale.", choice({"fahrenheit": ("in Fahrenheit", "on the Fahrenheit scale"),
                                                     "kelvin": ("in kelvin", "on the Kelvin scale")}),
                  enum=["fahrenheit", "kelvin"])),)),
    # ---------------------------------------------------------------- finance
    S("loans", "finance", (fn(
        "loan_payment", "Monthly payment of a loan. The annual rate is a fraction (0.05 for 5%).",
        ["I'm borrowing ${principal} at {annual_rate} a year over {years} years. What's my monthly payment?",
         "Monthly installment on a {principal} dollar loan, {years} years, interest {annual_rate}?"],
        principal=arg("number", "Amount borrowed.", integer(1000, 500000)),
        annual_rate=arg("number", "Annual interest rate as a fraction, e.g. 0.05.", rate(1, 12)),
        years=arg("integer", "Term in years.", integer(1, 30, words=0.5))),)),
    S("compound", "finance", (fn(
        "compound_interest", "Future value with compound interest. The rate is a fraction per year.",
        ["If I invest {principal} at {rate} compounded for {years} years, what will I have?",
         "{principal} deposited, {rate} yearly, {years} years, compounded {frequency}: final amount?"],
        principal=arg("number", "Initial amount.", integer(100, 90000)),
        rate=arg("number", "Yearly rate as a fraction (0.03 means 3%).", rate(1, 9)),
        years=arg("integer", "Number of years.", integer(1, 40, words=0.4)),
        frequency=arg("string", "How often interest compounds; default yearly.",
                      choice({"monthly": ("monthly", "every month"), "quarterly": ("quarterly", "each quarter")}),
                      required=False, enum=["yearly", "quarterly", "monthly"])),)),
    S("stocks", "finance", (fn(
        "stock_quote", "Latest price of a stock by ticker symbol.",
        ["Pull up the current price for {ticker}.", "Where is {ticker} trading right now?"],
        ticker=arg("string", "Ticker symbol.", pick(("AAPL", "MSFT", "TSLA", "NVDA", "BRK.B", "SAP")))),
        fn("portfolio_return", "Percentage return of a position.",
           ["Bought at {buy_price}, now {current_price}: what's my return?"],
           buy_price=arg("number", "Purchase price.", decimal(5, 400)),
           current_price=arg("number", "Current price.", decimal(5, 400))))),
    S("tax", "finance", (fn(
        "sales_tax", "Price including sales tax. The tax rate is given in percent (8.5 for 8.5%).",
        ["What does an item priced {price} cost after {tax_percent} tax?",
         "Add {tax_percent} sales tax to {price}."],
        price=arg("number", "Price before tax.", decimal(1, 900)),
        tax_percent=arg("number", "Tax in percent, 0–100.", percent(2, 25))),)),
    S("currency_fx", "finance", (fn(
        "exchange_money", "Convert money between currencies (ISO codes).",
        ["Change {amount} {source} into {target} for my trip.", "How many {target} do I get for {amount} {source}?"],
        amount=arg("number", "Amount to convert.", decimal(5, 5000)),
        source=arg("string", "Currency code to convert from.", pick(("EUR", "USD", "GBP", "CHF", "BRL"))),
        target=arg("string", "Currency code to convert to.", pick(("JPY", "INR", "ZAR", "MXN", "SEK")))),)),
    S("budget", "finance", (fn(
        "split_bill", "Split a restaurant bill between people, with an optional tip in percent.",
        ["Divide a bill of {total} among {people} people.", "{people} of us owe {total} total, plus a {tip} tip. "
                                                            "How much each?"],
        total=arg("number", "Total of the bill.", decimal(10, 600)),
        people=arg("integer", "Number of people.", integer(2, 12, words=0.6)),
        tip=arg("number", "Tip in percent; none by default.", percent(5, 25), required=False)),)),
    # ---------------------------------------------------------------- law and government
    S("court_cases", "law", (fn(
        "find_case", "Search court cases by party name and year.",
        ["Look for lawsuits involving {party} decided in {year}.", "Any court rulings naming {party} from {year}?"],
        party=arg("string", "A party's name.", pick(PEOPLE)), year=arg("integer", "Year of the decision.",
                                                                     integer(1970, 2024))),
        fn("statute_text", "Text of a law section by code and section number.",
           ["Show me section {section} of the {code}."],
           code=arg("string", "Name of the code.", pick(("Penal Code", "Civil Code", "Labor Code"))),
           section=arg("string", "Section number.", pick(("187", "1714.5", "2802", "22350")))))),
    S("permits", "government", (fn(
        "apply_permit", "File a permit application.",
        ["Start a {permit_type} application for {applicant}.", "{applicant} wants to apply for a {permit_type}."],
        permit_type=arg("string", "Kind of permit.", choice({"building": ("building permit",),
                                                             "parking": ("parking permit", "residential parking")}),
                        enum=["building", "parking", "event"]),
        applicant=arg("string", "Applicant's full name.", pick(PEOPLE))),)),
    # ---------------------------------------------------------------- sports
    S("football", "sports", (fn(
        "team_standing", "League position of a football team in a season.",
        ["Where did {team} finish in {season}?", "League table spot of {team}, season {season}"],
        team=arg("string", "Team name.", pick(TEAMS)), season=arg("integer", "Season start year.",
                                                                  integer(1995, 2024))),
        fn("player_goals", "Goals a player scored, optionally in one competition.",
           ["How many goals has {player} scored?", "Goal tally for {player} in the {competition}?"],
           player=arg("string", "Player name.", pick(("Erling Haaland", "Kylian Mbappé", "Vinícius Júnior",
                                                      "Son Heung-min", "Martin Ødegaard"))),
           competition=arg("string", "Competition name.", pick(("Champions League", "Premier League")),
                           required=False)))),
    S("running", "sports", (fn(
        "running_pace", "Pace per kilometre from a distance and a time.",
        ["I ran {distance_km} km in {minutes} minutes. What was my pace?",
         "{minutes} minutes for {distance_km} kilometres — pace?"],
        distance_km=arg("number", "Distance in km.", decimal(1, 42)),
        minutes=arg("number", "Time in minutes.", decimal(5, 240))),)),
    S("chess", "sports", (fn(
        "elo_change", "Rating change after a chess game.",
        ["My rating is {rating}, I beat someone rated {opponent}. How much do I gain?",
         "Elo update: me {rating}, opponent {opponent}, result {result}"],
        rating=arg("integer", "Player rating.", integer(800, 2800)),
        opponent=arg("integer", "Opponent rating.", integer(800, 2800)),
        result=arg("string", "Game result; default win.", choice({"draw": ("draw",), "loss": ("loss", "defeat")}),
                   required=False, enum=["win", "draw", "loss"])),)),
    # ---------------------------------------------------------------- food
    S("recipes", "food", (fn(
        "search_recipes", "Find recipes containing ingredients, optionally vegetarian only.",
        ["Suggest dishes I can make with {ingredients}.", "Recipes using {ingredients}, {vegetarian}, please."],
        ingredients=arg("array", "Ingredients.", listing(INGREDIENTS), items={"type": "string"}),
        vegetarian=arg("boolean", "Only vegetarian recipes.", lambda r: r.choice((("vegetarian only", True),
                                                                                   ("meat is fine", False))),
                       required=False)),
        fn("scale_recipe", "Scale a recipe's servings.",
           ["Take the recipe '{recipe}' from {servings_from} servings up to {servings_to}."],
           recipe=arg("string", "Recipe title.", pick(("Coq au Vin", "Pão de Queijo", "Mom's Lasagna"))),
           servings_from=arg("integer", "Original servings.", integer(2, 6, words=0.5)),
           servings_to=arg("integer", "Wanted servings.", integer(7, 20, words=0.5))))),
    S("nutrition", "food", (fn(
        "calorie_lookup", "Calories in a portion of a food, in grams.",
        ["How many calories are in {grams} grams of {food}?", "Calories for {grams} g {food}"],
        food=arg("string", "The food.", pick(INGREDIENTS)), grams=arg("number", "Portion in grams.",
                                                                      integer(10, 500))),)),
    S("restaurant", "food", (fn(
        "book_table", "Reserve a restaurant table.",
        ["Reserve a table for {party_size} at {restaurant} on {date}.",
         "Can you get us into {restaurant} on {date}? We're {party_size}."],
        restaurant=arg("string", "Restaurant name.", pick(("Noma", "Le Bernardin", "Dishoom", "Café Sabarsky"))),
        party_size=arg("integer", "Number of guests.", integer(1, 12, words=0.6)),
        date=arg("string", "Date, YYYY-MM-DD.", date)),)),
    # ---------------------------------------------------------------- travel
    S("flights", "travel", (fn(
        "search_flights", "Find flights between two cities on a date, in a cabin class.",
        ["Find me a flight from {origin} to {destination} on {date}.",
         "I need to fly {origin} → {destination} on {date}, {cabin}."],
        origin=arg("string", "Departure city.", pick(CITIES)), destination=arg("string", "Arrival city.",
                                                                              pick(CITIES)),
        date=arg("string", "Departure date, YYYY-MM-DD.", date),
        cabin=arg("string", "Cabin class; default economy.", choice({"business": ("business class",),
                                                                     "first": ("first class",)}),
                  required=False, enum=["economy", "business", "first"])),)),
    S("hotels", "travel", (fn(
        "find_hotel", "Search hotels in a city under a nightly price.",
        ["Hotels in {city} below {max_price} a night?", "Somewhere to stay in {city}, at most {max_price} per "
                                                        "night, {stars} stars"],
        city=arg("string", "City.", pick(CITIES)), max_price=arg("number", "Maximum price per night.",
                                                                 integer(40, 600)),
        stars=arg("integer", "Minimum star rating.", integer(2, 5, words=0.8), required=False)),)),
    S("weather", "weather", (fn(
        "forecast", "Weather forecast for a place for a number of days.",
        ["What will the weather be like in {location} over the next {days} days?",
         "Give me a {days}-day outlook for {location} {units}."],
        location=arg("string", "City name.", pick(CITIES)),
        days=arg("integer", "Days ahead.", integer(1, 10, words=0.7)),
        units=arg("string", "Temperature unit; default celsius.", choice(C_WEATHER), required=False,
                  enum=["celsius", "fahrenheit"])),)),
    S("maps", "travel", (fn(
        "route_distance", "Driving distance between two places.",
        ["How far is it to drive from {start} to {end}?", "Road distance {start} - {end}, {avoid}"],
        start=arg("string", "Start.", pick(CITIES)), end=arg("string", "End.", pick(CITIES)),
        avoid=arg("string", "What to avoid; nothing by default.", choice({"tolls": ("avoiding tolls", "no toll roads"),
                                                                          "highways": ("no highways",)}),
                  required=False, enum=["tolls", "highways", "ferries"])),)),
    # ---------------------------------------------------------------- files and systems
    S("files", "files", (fn(
        "read_file", "Read a file from disk.", ["Open the file at {path} and show me what's inside.",
                                                 "Print the contents of {path}"],
        path=arg("string", "The file path, exactly as given.", pick(PATHS))),
        fn("delete_file", "Delete a file.", ["Remove {path} from the disk."],
           path=arg("string", "The file path.", pick(PATHS))))),
    S("shell", "systems", (fn(
        "run_command", "Run a shell command on a host.",
        ["On {host}, execute `{command}`.", "ssh into {host} and run {command}"],
        host=arg("string", "Host name.", pick(("web-01", "db.internal", "build-box", "pi.local"))),
        command=arg("string", "The command, as given.", pick(("ls -la /tmp", "df -h", 'grep "ERROR" app.log',
                                                              "echo 'done'")))),)),
    S("dns", "systems", (fn(
        "lookup_dns", "DNS records of a domain.",
        ["What are the {record_type} records for {domain}?", "Resolve {domain} ({record_type})"],
        domain=arg("string", "Domain name.", pick(("example.org", "café.fr", "mail.google.com", "wikipedia.org"))),
        record_type=arg("string", "Record type.", choice({"A": ("A",), "MX": ("MX", "mail"), "TXT": ("TXT",)}),
                        enum=["A", "AAAA", "MX", "TXT"])),)),
    S("calendar", "productivity", (fn(
        "create_event", "Add an event to the calendar.",
        ["Put '{title}' on my calendar for {date}.", "Schedule {title} on {date} lasting {duration} minutes."],
        title=arg("string", "Event title.", pick(TITLES)), date=arg("string", "Date, YYYY-MM-DD.", date),
        duration=arg("integer", "Length in minutes; default 60.", integer(15, 180), required=False)),)),
    S("reminders", "productivity", (fn(
        "set_reminder", "Set a reminder with a message after some minutes.",
        ["Remind me in {minutes} minutes to {message}.", "In {minutes} min, ping me: {message}"],
        minutes=arg("integer", "Minutes from now.", integer(1, 20, words=0.7)),
        message=arg("string", "What to remind of, as written.", pick(("call Siobhan", "take the pizza out",
                                                                      "check the oven", "stretch")))),)),
    S("notes", "productivity", (fn(
        "save_note", "Save a note with a title and tags.",
        ["Save a note called {title} tagged {tags}.", "New note '{title}' with the tags {tags}"],
        title=arg("string", "Note title.", pick(TITLES)),
        tags=arg("array", "Tags.", listing(("work", "ideas", "urgent", "home", "reading")),
                 items={"type": "string"})),)),
    S("messaging", "communication", (fn(
        "post_message", "Post a message to a chat channel.",
        ["Post {text} in #{channel}.", "Tell the #{channel} channel: {text}"],
        channel=arg("string", "Channel name.", pick(("general", "dev-ops", "random", "design"))),
        text=arg("string", "Message text, exactly as written.", lambda r: (lambda v: (f'"{v}"', v))(
            r.choice(PHRASES)))),)),
    S("email_send", "communication", (fn(
        "compose_email", "Send an email with a subject and a body.",
        ["Email {recipient} with the subject {subject} and the body {body}.",
         "Write to {recipient}: subject {subject}, text {body}"],
        recipient=arg("string", "Recipient name.", pick(PEOPLE)),
        subject=arg("string", "Subject line.", lambda r: (lambda v: (f"'{v}'", v))(r.choice(("Q3 numbers",
                                                                                           "Lunch?", "Re: plans")))),
        body=arg("string", "Body text.", lambda r: (lambda v: (f'"{v}"', v))(r.choice(PHRASES)))),)),
    S("translate", "language", (fn(
        "translate_text", "Translate a text into a language.",
        ["Translate {text} into {language}.", "How do you say {text} in {language}?"],
        text=arg("string", "The text, as written.", lambda r: (lambda v: (f'"{v}"', v))(r.choice(PHRASES))),
        language=arg("string", "Target language.", choice(LANGS), enum=sorted(LANGS))),)),
    S("dictionary", "language", (fn(
        "define_word", "Dictionary definition of a word.",
        ["Define the word {word}.", "What does {word} mean?"],
        word=arg("string", "The word.", pick(("serendipity", "Weltschmerz", "saudade", "hygge", "ennui")))),
        fn("synonyms", "Synonyms of a word, up to a maximum count.", ["Give me {limit} synonyms for {word}."],
           word=arg("string", "The word.", pick(("happy", "quick", "bright"))),
           limit=arg("integer", "How many.", integer(2, 10, words=0.8))))),
    # ---------------------------------------------------------------- shopping and home
    S("shop", "shopping", (fn(
        "add_to_cart", "Add a product to the shopping cart.",
        ["Put {quantity} {product} in my cart.", "Add the {product} to the basket, quantity {quantity}"],
        product=arg("string", "Product name.", pick(PRODUCTS)),
        quantity=arg("integer", "How many.", integer(1, 9, words=0.7))),
        fn("track_order", "Status of an order by id.", ["Where is order {order_id}?"],
           order_id=arg("string", "Order id.", pick(("A-1029-X", "ORD#5531", "zx-0042")))))),
    S("price_watch", "shopping", (fn(
        "price_alert", "Alert when a product drops below a price.",
        ["Let me know when the {product} goes under {target_price}.", "Watch {product}; alert below "
                                                                      "{target_price} dollars"],
        product=arg("string", "Product.", pick(PRODUCTS)),
        target_price=arg("number", "Price threshold.", decimal(10, 2000))),)),
    S("thermostat", "home", (fn(
        "set_thermostat", "Set the thermostat of a room.",
        ["Set the {room} to {temperature} degrees.", "Make it {temperature}° in the {room}, {mode} mode"],
        room=arg("string", "Room.", pick(("living room", "nursery", "attic", "basement"))),
        temperature=arg("number", "Target temperature.", decimal(15, 28)),
        mode=arg("string", "Mode; default auto.", choice({"heat": ("heat", "heating"), "cool": ("cool", "cooling")}),
                 required=False, enum=["auto", "heat", "cool"])),)),
    S("garden", "home", (fn(
        "watering_schedule", "Watering plan for a plant.",
        ["How often should I water my {plant}?", "Watering plan for a {plant} growing {location}"],
        plant=arg("string", "Plant.", pick(("monstera", "fiddle-leaf fig", "basil", "aloe vera"))),
        location=arg("string", "Where it grows; indoors by default.", choice({"outdoors": ("outdoors", "outside"),
                                                                              "balcony": ("on the balcony",)}),
                     required=False, enum=["indoors", "outdoors", "balcony"])),)),
    # ---------------------------------------------------------------- media
    S("movies", "media", (fn(
        "movie_info", "Details of a film by title and optional year.",
        ["Tell me about the film {title}.", "Details on {title} ({year})"],
        title=arg("string", "Film title, as written.", pick(TITLES)),
        year=arg("integer", "Release year.", integer(1950, 2024), required=False)),)),
    S("music", "media", (fn(
        "create_playlist", "Create a playlist of songs.",
        ["Make a playlist named {name} with {songs}.", "New playlist {name}: {songs}"],
        name=arg("string", "Playlist name.", lambda r: (lambda v: (f"'{v}'", v))(r.choice(
            ("Road Trip", "Sunday Morning", "Björk & Friends")))),
        songs=arg("array", "Song titles.", listing(("Hey Jude", "Jolene", "Bohemian Rhapsody", "Clair de Lune",
                                                    "Hallelujah")), items={"type": "string"})),)),
    S("books", "media", (fn(
        "find_book", "Look up a book by title and author.",
        ["Find the book {title} by {author}.", "Do you have {title}, written by {author}?"],
        title=arg("string", "Book title.", pick(TITLES)), author=arg("string", "Author.", pick(PEOPLE))),)),
    S("podcast", "media", (fn(
        "podcast_episodes", "Latest episodes of a podcast.",
        ["List the latest {count} episodes of {show}.", "What's new on {show}?"],
        show=arg("string", "Podcast name.", pick(("Hardcore History", "99% Invisible", "Radiolab"))),
        count=arg("integer", "How many; default 5.", integer(2, 10, words=0.6), required=False)),)),
    # ---------------------------------------------------------------- health and people
    S("health", "health", (fn(
        "bmi", "Body mass index from weight in kg and height in metres.",
        ["I weigh {weight_kg} kg and I'm {height_m} m tall; what's my BMI?", "BMI for {weight_kg}kg, {height_m}m"],
        weight_kg=arg("number", "Weight in kg.", decimal(40, 140)),
        height_m=arg("number", "Height in metres.", lambda r: (lambda v: (v, float(v)))(f"{r.uniform(1.45, 2.05):.2f}"))
    ),)),
    S("appointments", "health", (fn(
        "book_appointment", "Book a doctor's appointment.",
        ["Book {patient} in with {doctor} on {date}.", "Appointment for {patient} to see {doctor}, {date}"],
        patient=arg("string", "Patient name.", pick(PEOPLE)),
        doctor=arg("string", "Doctor name.", pick(("Dr. Müller", "Dr. Ramírez", "Dr. O'Connor"))),
        date=arg("string", "Date, YYYY-MM-DD.", date)),)),
    S("contacts", "people", (fn(
        "add_contact", "Add a contact with a name and an address.",
        ["Save {name} as a contact; they live at {address[street]}, {address[city]}.",
         "New contact {name}, address {address[street]} in {address[city]}"],
        name=arg("string", "Full name.", pick(PEOPLE)),
        # Built as an Arg: `arg(required=...)` is the argument's own flag, so the object's list of required
        # properties cannot go through it.
        address=Arg({"type": "object", "description": "Postal address.",
                     "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                     "required": ["street", "city"]},
                    nested(street=pick(("12 Rue de Rivoli", "5 Åsgatan", "221B Baker Street")), city=pick(CITIES)),
                    True)),)),
    S("hr", "people", (fn(
        "request_leave", "Request days off.",
        ["{employee} would like {days} days of leave starting {start}.",
         "File a leave request: {employee}, from {start}, {days} days, reason {reason}"],
        employee=arg("string", "Employee.", pick(PEOPLE)), days=arg("integer", "Days.", integer(1, 15, words=0.6)),
        start=arg("string", "First day, YYYY-MM-DD.", date),
        reason=arg("string", "Reason; optional.", choice({"vacation": ("vacation",), "sick": ("sick leave",)}),
                   required=False, enum=["vacation", "sick", "personal"])),)),
    # ---------------------------------------------------------------- data and text
    S("text_tools", "text", (fn(
        "count_words", "Number of words in a text.", ["How many words are in {text}?"],
        text=arg("string", "The text.", lambda r: (lambda v: (f'"{v}"', v))(r.choice(PHRASES)))),
        fn("slugify", "Turn a title into a URL slug.", ["Make a URL slug out of {title}."],
           title=arg("string", "Title.", lambda r: (lambda v: (f'"{v}"', v))(r.choice(TITLES)))))),
    S("database", "data", (fn(
        "query_table", "Rows of a table where a column equals a value, up to a limit.",
        ["Fetch rows from {table} where {column} is {value}.",
         "From the {table} table, give me at most {limit} rows with {column} = {value}"],
        table=arg("string", "Table.", pick(("customers", "orders", "invoices"))),
        column=arg("string", "Column.", pick(("country", "status", "owner"))),
        value=arg("string", "Value.", pick(("Côte d'Ivoire", "PENDING", "o'brien"))),
        limit=arg("integer", "Row limit; default 100.", integer(5, 50), required=False)),)),
    S("spreadsheet", "data", (fn(
        "sum_column", "Sum a column of a spreadsheet file.",
        ["Add up column {column} in {file}.", "Total of column {column} from the workbook {file}"],
        file=arg("string", "The file path.", pick(PATHS[:2] + ("budget 2025.xlsx", "Q1\\sales.csv"))),
        column=arg("string", "Column letter.", pick(("B", "D", "AA")))),)),
    S("images", "media", (fn(
        "resize_image", "Resize an image to a width and height in pixels.",
        ["Resize {path} to {width} by {height} pixels.", "Scale the picture {path} down to {width}x{height}"],
        path=arg("string", "Image path.", pick(("C:\\pics\\cat's toy.png", "/home/zoë/avatar.jpg", "logo.svg"))),
        width=arg("integer", "Width.", integer(16, 4000)), height=arg("integer", "Height.", integer(16, 4000))),)),
    S("geo", "geography", (fn(
        "country_facts", "Facts about a country: population, capital, area.",
        ["What's the population of {country}?", "Tell me the {field} of {country}."],
        country=arg("string", "Country name.", pick(("Côte d'Ivoire", "Türkiye", "São Tomé and Príncipe",
                                                     "New Zealand", "Bhutan"))),
        field=arg("string", "Which fact; default population.", choice({"capital": ("capital",),
                                                                       "area": ("area", "land area")}),
                  required=False, enum=["population", "capital", "area"])),)),
    S("astronomy", "science", (fn(
        "planet_distance", "Distance between two planets on a date in AU.",
        ["How far apart are {planet_a} and {planet_b} on {date}?", "Distance {planet_a}-{planet_b} on {date}"],
        planet_a=arg("string", "Planet.", pick(("Mars", "Venus", "Jupiter"))),
        planet_b=arg("string", "Planet.", pick(("Earth", "Saturn", "Mercury"))),
        date=arg("string", "Date, YYYY-MM-DD.", date)),)),
    S("elevation", "geography", (fn(
        "altitude_at", "Altitude above sea level at coordinates (negative below sea level).",
        ["What is the elevation at latitude {lat}, longitude {lon}?", "altitude for coordinates {lat}, {lon}"],
        lat=arg("number", "Latitude (south is negative).", decimal(1, 80, places=4, negative=0.5)),
        lon=arg("number", "Longitude (west is negative).", decimal(1, 170, places=4, negative=0.5))),)),
)

# The tuning split: rules and thresholds may be shaped on these; the rest are held out.
TUNING = frozenset({"kinematics", "loans", "football", "recipes", "flights", "files", "calendar", "messaging",
                    "shop", "movies", "health", "database", "units"})
HELDOUT = frozenset(s.key for s in SETS) - TUNING
BY_KEY = {s.key: s for s in SETS}


# ---------------------------------------------------------------- drawing requests
@dataclass
class Case:
    """One request: the tools shown, and the calls that answer it (BFCL possible answers: per argument,
    the acceptable values; "" means the argument may be left out)."""

    id: str
    kind: str  # single, irrelevance or parallel
    request: str
    tools: list[dict[str, Any]]
    answers: list[dict[str, dict[str, list[Any]]]] = field(default_factory=list)
    family: str = ""


def draw_call(rng: random.Random, function: Fn) -> tuple[str, dict[str, list[Any]]]:
    """A request for `function` from one of its templates, with its possible answer."""
    template = rng.choice(function.templates)
    surfaces, answer = {}, {}
    for name, spec in function.args.items():
        surface, value = spec.gen(rng)
        surfaces[name] = surface
        mentioned = "{" + name + "}" in template or "{" + name + "[" in template
        if mentioned:
            answer[name] = [{k: [v] for k, v in value.items()} if isinstance(value, dict) else value]
        elif spec.required:
            raise ValueError(f"template {template!r} of {function.name} does not mention required {name!r}")
        else:
            default = spec.schema.get("default")
            answer[name] = ["", default] if default is not None else [""]
    return template.format(**surfaces), answer


def cases(split: str = "heldout", singles: int = 300, irrelevant: int = 60, parallel: int = 40,
          seed: int = 0) -> list[Case]:
    """Seeded requests over one split's sets: single calls (the set's tools, half the time beside a
    distractor set's), irrelevant requests (another domain's request to this set's tools) and parallel
    requests (two requests of the set, joined)."""
    keys = sorted(HELDOUT if split == "heldout" else TUNING)
    rng = random.Random(f"catalog:{split}:{seed}")
    out: list[Case] = []
    for i in range(singles):
        family = BY_KEY[keys[i % len(keys)]]
        function = rng.choice(family.functions)
        request, answer = draw_call(rng, function)
        tools = [f.tool() for f in family.functions]
        if rng.random() < 0.5:
            other = BY_KEY[rng.choice([k for k in keys if BY_KEY[k].domain != family.domain])]
            extra = [f.tool() for f in other.functions]
            tools = tools + extra if rng.random() < 0.5 else extra + tools
        out.append(Case(f"{split}_single_{i}", "single", request, tools, [{function.name: answer}], family.key))
    for i in range(irrelevant):
        family = BY_KEY[rng.choice(keys)]
        other = BY_KEY[rng.choice([k for k in keys if BY_KEY[k].domain != family.domain])]
        request, _ = draw_call(rng, rng.choice(other.functions))
        out.append(Case(f"{split}_irrelevance_{i}", "irrelevance", request, [f.tool() for f in family.functions],
                        [], family.key))
    joins = ("{0}{1} Also, {2}", "{0}; then {2}", "{0}{1} After that, {2}", "{0}, and also {2}")
    for i in range(parallel):
        family = BY_KEY[keys[i % len(keys)]]
        first, second = rng.choice(family.functions), rng.choice(family.functions)
        (r1, a1), (r2, a2) = draw_call(rng, first), draw_call(rng, second)
        end = r1[-1] if r1[-1] in ".?!" else "."
        request = rng.choice(joins).format(r1.rstrip(".?!"), end, r2)
        out.append(Case(f"{split}_parallel_{i}", "parallel", request, [f.tool() for f in family.functions],
                        [{first.name: a1}, {second.name: a2}], family.key))
    return out


def as_bfcl(case: Case) -> BfclItem:
    return BfclItem(case.id, [{"role": "user", "content": case.request}], case.tools, case.answers or None)
