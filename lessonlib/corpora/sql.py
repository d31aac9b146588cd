"""The text-to-SQL data set: questions about a small kitchen database, answered with SQLite.

The Hugging Face TRL tutorial in the lesson fine-tunes CodeLlama on text-to-SQL; this is the same
task at laptop scale. The database (recipes, ingredients, quantities, reviews) is generated from
a seed and shipped as SQL text (``data/sql/kitchen.sql``); :func:`connect` builds an in-memory
SQLite database from it in milliseconds. Every question has a gold query that runs, and
:func:`same_result` scores a predicted query by *execution*: right when it returns the same
rows as the gold query (order ignored unless the gold query has ``ORDER BY``).

>>> db = connect()
>>> db.execute("SELECT COUNT(*) FROM recipes").fetchone()[0] > 0
True
>>> same_result("SELECT title FROM recipes WHERE minutes < 20", "SELECT title FROM recipes WHERE 20 > minutes", db)
True
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

from ..settings import data_dir

SCHEMA = """CREATE TABLE recipes (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  cuisine TEXT NOT NULL,      -- e.g. 'French', 'Italian'
  course TEXT NOT NULL,       -- 'starter', 'main' or 'dessert'
  minutes INTEGER NOT NULL,   -- total preparation time
  servings INTEGER NOT NULL,
  difficulty TEXT NOT NULL    -- 'easy', 'medium' or 'hard'
);
CREATE TABLE ingredients (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  category TEXT NOT NULL,     -- 'dairy', 'vegetable', 'meat', 'fish', 'grain', 'spice', 'fruit', 'pantry'
  price_per_kg REAL NOT NULL, -- euros
  vegan INTEGER NOT NULL      -- 1 or 0
);
CREATE TABLE recipe_ingredients (
  recipe_id INTEGER NOT NULL REFERENCES recipes(id),
  ingredient_id INTEGER NOT NULL REFERENCES ingredients(id),
  grams INTEGER NOT NULL
);
CREATE TABLE reviews (
  id INTEGER PRIMARY KEY,
  recipe_id INTEGER NOT NULL REFERENCES recipes(id),
  stars INTEGER NOT NULL,     -- 1 to 5
  reviewed_on TEXT NOT NULL   -- ISO date
);"""

SYSTEM_PROMPT = (
    "You translate questions about a kitchen database into one SQLite query. "
    "Answer with the SQL query only.\nSCHEMA:\n" + SCHEMA
)

CUISINES = ["French", "Italian", "Indian", "Mexican", "Japanese", "Greek", "Moroccan"]
COURSES = ["starter", "main", "dessert"]
DIFFICULTIES = ["easy", "medium", "hard"]
INGREDIENTS = [  # name, category, price per kg, vegan
    ("flour", "grain", 1.2, 1), ("rice", "grain", 2.5, 1), ("pasta", "grain", 2.0, 1), ("oats", "grain", 3.0, 1),
    ("butter", "dairy", 9.5, 0), ("milk", "dairy", 1.1, 0), ("cream", "dairy", 5.0, 0), ("parmesan", "dairy", 22.0, 0),
    ("yogurt", "dairy", 3.5, 0), ("eggs", "dairy", 4.5, 0), ("tomatoes", "vegetable", 3.0, 1), ("onion", "vegetable", 1.5, 1),
    ("garlic", "vegetable", 8.0, 1), ("carrots", "vegetable", 1.3, 1), ("spinach", "vegetable", 6.0, 1),
    ("potatoes", "vegetable", 1.0, 1), ("zucchini", "vegetable", 2.8, 1), ("chicken", "meat", 11.0, 0),
    ("beef", "meat", 16.0, 0), ("lamb", "meat", 19.0, 0), ("salmon", "fish", 24.0, 0), ("shrimp", "fish", 21.0, 0),
    ("cumin", "spice", 30.0, 1), ("paprika", "spice", 25.0, 1), ("ginger", "spice", 9.0, 1), ("saffron", "spice", 900.0, 1),
    ("apples", "fruit", 2.5, 1), ("lemon", "fruit", 3.2, 1), ("strawberries", "fruit", 8.0, 1), ("bananas", "fruit", 1.9, 1),
    ("sugar", "pantry", 1.0, 1), ("olive oil", "pantry", 9.0, 1), ("chickpeas", "pantry", 3.0, 1), ("lentils", "pantry", 2.7, 1),
    ("honey", "pantry", 12.0, 1), ("chocolate", "pantry", 14.0, 1),
]
_DISHES = {
    "starter": ["Soup", "Salad", "Tartlets", "Dip", "Fritters", "Bruschetta"],
    "main": ["Curry", "Stew", "Risotto", "Tagine", "Pasta Bake", "Stir-Fry", "Tacos", "Skewers", "Pie"],
    "dessert": ["Cake", "Tart", "Mousse", "Crumble", "Sorbet", "Pudding"],
}

# Question templates: (English phrasings, gold SQL, parameter kind).
TEMPLATES: list[tuple[list[str], str, str]] = [
    (["How many {cuisine} recipes are there?", "Count the recipes of {cuisine} cuisine.", "What is the number of {cuisine} recipes?"],
     "SELECT COUNT(*) FROM recipes WHERE cuisine = '{cuisine}';", "cuisine"),
    (["List the titles of recipes that take less than {minutes} minutes.", "Which recipes can be made in under {minutes} minutes?"],
     "SELECT title FROM recipes WHERE minutes < {minutes};", "minutes"),
    (["What is the average preparation time of {course} recipes?", "On average, how many minutes does a {course} take?"],
     "SELECT AVG(minutes) FROM recipes WHERE course = '{course}';", "course"),
    (["Which ingredients cost more than {price} euros per kilogram?", "List ingredients priced above {price} euros a kilo."],
     "SELECT name FROM ingredients WHERE price_per_kg > {price};", "price"),
    (["How many ingredients does '{title}' use?", "Count the ingredients in the recipe '{title}'."],
     "SELECT COUNT(*) FROM recipe_ingredients WHERE recipe_id = (SELECT id FROM recipes WHERE title = '{title}');", "title"),
    (["Which recipes use {ingredient}?", "List the titles of recipes containing {ingredient}."],
     "SELECT r.title FROM recipes r JOIN recipe_ingredients ri ON ri.recipe_id = r.id JOIN ingredients i ON i.id = ri.ingredient_id WHERE i.name = '{ingredient}';", "ingredient"),
    (["What is the average rating of '{title}'?", "What is the mean number of stars given to '{title}'?"],
     "SELECT AVG(stars) FROM reviews WHERE recipe_id = (SELECT id FROM recipes WHERE title = '{title}');", "title"),
    (["List the {n} quickest recipes.", "Which {n} recipes take the least time? Fastest first."],
     "SELECT title FROM recipes ORDER BY minutes ASC, id ASC LIMIT {n};", "n"),
    (["How many {difficulty} recipes serve at least {servings} people?", "Count the {difficulty} recipes with {servings} or more servings."],
     "SELECT COUNT(*) FROM recipes WHERE difficulty = '{difficulty}' AND servings >= {servings};", "difficulty_servings"),
    (["What is the total weight in grams of the ingredients of '{title}'?", "How many grams of ingredients go into '{title}'?"],
     "SELECT SUM(grams) FROM recipe_ingredients WHERE recipe_id = (SELECT id FROM recipes WHERE title = '{title}');", "title"),
    (["Which vegan ingredients are in the {category} category?", "List the {category} ingredients that are vegan."],
     "SELECT name FROM ingredients WHERE vegan = 1 AND category = '{category}';", "category"),
    (["How many reviews gave {stars} stars?", "Count the {stars}-star reviews."],
     "SELECT COUNT(*) FROM reviews WHERE stars = {stars};", "stars"),
    (["How much do the ingredients of '{title}' cost in euros?", "What is the ingredient cost of '{title}'?"],
     "SELECT SUM(ri.grams * i.price_per_kg / 1000.0) FROM recipe_ingredients ri JOIN ingredients i ON i.id = ri.ingredient_id WHERE ri.recipe_id = (SELECT id FROM recipes WHERE title = '{title}');", "title"),
    (["Which {cuisine} recipes have no reviews?", "List {cuisine} recipes that nobody has reviewed."],
     "SELECT title FROM recipes WHERE cuisine = '{cuisine}' AND id NOT IN (SELECT recipe_id FROM reviews);", "cuisine"),
    (["How many recipes does each cuisine have?", "Count recipes per cuisine."],
     "SELECT cuisine, COUNT(*) FROM recipes GROUP BY cuisine;", "none"),
    (["Which {course} recipes are {difficulty}?", "List the {difficulty} {course} recipes."],
     "SELECT title FROM recipes WHERE course = '{course}' AND difficulty = '{difficulty}';", "course_difficulty"),
    (["Which recipes were reviewed in {year}?", "List the titles of recipes with a review from {year}."],
     "SELECT DISTINCT r.title FROM recipes r JOIN reviews v ON v.recipe_id = r.id WHERE v.reviewed_on LIKE '{year}-%';", "year"),
    (["What is the most expensive ingredient in '{title}'?", "Which ingredient of '{title}' has the highest price per kilogram?"],
     "SELECT i.name FROM ingredients i JOIN recipe_ingredients ri ON ri.ingredient_id = i.id WHERE ri.recipe_id = (SELECT id FROM recipes WHERE title = '{title}') ORDER BY i.price_per_kg DESC LIMIT 1;", "title"),
]


def build_database_sql(seed: int = 18) -> str:
    """The whole database as SQL text (schema + inserts), reproducible from ``seed``."""
    rng = random.Random(seed)
    lines = [SCHEMA, ""]
    for i, (name, category, price, vegan) in enumerate(INGREDIENTS, start=1):
        lines.append(f"INSERT INTO ingredients VALUES ({i}, '{name}', '{category}', {price}, {vegan});")
    titles: set[str] = set()
    recipe_id = review_id = 0
    while recipe_id < 60:
        cuisine, course = rng.choice(CUISINES), rng.choice(COURSES)
        main = rng.choice([n for n, c, _, _ in INGREDIENTS if c not in {"spice", "pantry"}])
        title = f"{cuisine} {main.title()} {rng.choice(_DISHES[course])}"
        if title in titles:
            continue
        titles.add(title)
        recipe_id += 1
        minutes, servings = rng.choice([10, 15, 20, 25, 30, 40, 45, 60, 90, 120]), rng.choice([1, 2, 4, 6, 8])
        difficulty = rng.choice(DIFFICULTIES)
        lines.append(f"INSERT INTO recipes VALUES ({recipe_id}, '{title}', '{cuisine}', '{course}', {minutes}, {servings}, '{difficulty}');")
        main_id = next(i for i, row in enumerate(INGREDIENTS, start=1) if row[0] == main)
        others = rng.sample([i for i in range(1, len(INGREDIENTS) + 1) if i != main_id], k=rng.randint(2, 6))
        for ingredient_id in [main_id] + others:
            lines.append(f"INSERT INTO recipe_ingredients VALUES ({recipe_id}, {ingredient_id}, {rng.choice([5, 10, 50, 100, 150, 200, 250, 400])});")
        for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
            review_id += 1
            date = f"{rng.choice([2023, 2024, 2025])}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            lines.append(f"INSERT INTO reviews VALUES ({review_id}, {recipe_id}, {rng.choice([1, 2, 3, 3, 4, 4, 5, 5, 5])}, '{date}');")
    return "\n".join(lines) + "\n"


def database_file() -> Path:
    """The shipped database text, ``data/sql/kitchen.sql``."""
    return data_dir() / "sql" / "kitchen.sql"


def connect(sql_text: str | None = None) -> sqlite3.Connection:
    """An in-memory SQLite database built from the shipped SQL text (or ``sql_text``)."""
    text = sql_text if sql_text is not None else database_file().read_text(encoding="utf-8")
    db = sqlite3.connect(":memory:")
    db.executescript(text)
    return db


def run_query(query: str, db: sqlite3.Connection, *, max_rows: int = 10_000) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (raises ``sqlite3.Error`` on bad SQL)."""
    cursor = db.execute(query)
    return cursor.fetchmany(max_rows)


def _normalise(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


def same_result(predicted: str, gold: str, db: sqlite3.Connection) -> bool:
    """Execution match: the predicted query returns the gold query's rows (any order unless ORDER BY)."""
    try:
        got = _normalise(run_query(predicted, db))
    except (sqlite3.Error, sqlite3.Warning, ValueError):
        return False
    want = _normalise(run_query(gold, db))
    if "order by" in gold.lower():
        return got == want
    return sorted(got, key=repr) == sorted(want, key=repr)


def make_example(rng: random.Random, db: sqlite3.Connection) -> dict[str, Any]:
    """One question and its gold query, as an OpenAI chat record."""
    phrasings, sql, _kind = rng.choice(TEMPLATES)
    titles = [r[0] for r in db.execute("SELECT title FROM recipes ORDER BY id")]
    params = {
        "cuisine": rng.choice(CUISINES),
        "minutes": rng.choice([15, 20, 30, 45, 60]),
        "course": rng.choice(COURSES),
        "price": rng.choice([2, 5, 10, 15, 20]),
        "title": rng.choice(titles),
        "ingredient": rng.choice(INGREDIENTS)[0],
        "n": rng.choice([3, 5, 10]),
        "difficulty": rng.choice(DIFFICULTIES),
        "servings": rng.choice([2, 4, 6]),
        "category": rng.choice(sorted({c for _, c, _, _ in INGREDIENTS})),
        "stars": rng.randint(1, 5),
        "year": rng.choice([2023, 2024, 2025]),
    }
    question = rng.choice(phrasings).format(**params)
    query = sql.format(**params)
    run_query(query, db)  # every gold query must run
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": question},
            {"role": "assistant", "content": query},
        ]
    }


def generate(n: int, *, seed: int = 18, db: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
    """``n`` distinct question/query examples, reproducible from ``seed``."""
    rng = random.Random(seed)
    db = db or connect()
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(f"cannot make {n} distinct questions from the templates")
        example = make_example(rng, db)
        key = example["messages"][1]["content"]
        if key not in seen:
            seen.add(key)
            out.append(example)
    return out
