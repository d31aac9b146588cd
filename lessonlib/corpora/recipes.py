"""The recipe-assistant data set: recipe text in, generic ingredients out (a JSON list).

This is the task of the OpenAI and Azure OpenAI tutorials the lesson links to (they use
RecipeNLG); here the recipes are *generated* from a small hand-written catalogue, so the data
set is ours, deterministic, bilingual (English and French) and as large as needed.

Each example is an OpenAI chat fine-tuning record::

    {"messages": [
      {"role": "system", "content": SYSTEM_PROMPT},
      {"role": "user", "content": "Title: Lemon Pancakes\\nIngredients:\\n- 2 cups all-purpose flour\\n..."},
      {"role": "assistant", "content": "[\\"flour\\", ...]"}]}

The answer lists each generic ingredient once, lower case, in the order the recipe lists them,
in the recipe's language. Scope and limits: a few dozen ingredients, eight dish families; good
for teaching format-following, not a culinary reference.

>>> examples = generate(3, seed=1)
>>> examples[0]["messages"][0]["role"], examples[0]["messages"][-1]["role"]
('system', 'assistant')
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

SYSTEM_PROMPT = (
    "You are a recipe assistant. Read the recipe and answer with its generic ingredients as a "
    "JSON list of lower-case strings, each once, in the order they appear, in the recipe's language."
)


@dataclass(frozen=True)
class Ingredient:
    en: str  # generic name in English
    fr: str  # generic name in French
    en_forms: tuple[str, ...]  # how English recipes write it
    fr_forms: tuple[str, ...]  # how French recipes write it
    unit: str  # "mass", "volume", "count", "spoon", "pinch" or "piece"


def _i(en: str, fr: str, en_forms: str, fr_forms: str, unit: str) -> Ingredient:
    return Ingredient(en, fr, tuple(en_forms.split("|")), tuple(fr_forms.split("|")), unit)


CATALOGUE: dict[str, Ingredient] = {
    i.en: i
    for i in (
        _i("flour", "farine", "all-purpose flour|plain flour|sifted flour|whole wheat flour", "farine de blé|farine T55|farine tamisée", "mass"),
        _i("sugar", "sucre", "granulated sugar|caster sugar|white sugar", "sucre en poudre|sucre semoule", "mass"),
        _i("brown sugar", "cassonade", "packed brown sugar|light brown sugar", "cassonade|sucre roux", "mass"),
        _i("eggs", "œufs", "large eggs|eggs, beaten|free-range eggs", "œufs|gros œufs|œufs battus", "count"),
        _i("milk", "lait", "whole milk|milk|skimmed milk", "lait entier|lait demi-écrémé", "volume"),
        _i("butter", "beurre", "unsalted butter, melted|butter, softened|salted butter", "beurre doux fondu|beurre mou|beurre demi-sel", "mass"),
        _i("salt", "sel", "salt|sea salt|kosher salt", "sel fin|fleur de sel", "pinch"),
        _i("baking powder", "levure chimique", "baking powder", "levure chimique|sachet de levure chimique", "spoon"),
        _i("vanilla", "vanille", "vanilla extract|pure vanilla extract", "extrait de vanille|gousse de vanille", "spoon"),
        _i("chocolate", "chocolat", "dark chocolate, chopped|semisweet chocolate chips|milk chocolate", "chocolat noir pâtissier|pépites de chocolat", "mass"),
        _i("cocoa", "cacao", "unsweetened cocoa powder|cocoa powder", "cacao en poudre non sucré", "spoon"),
        _i("lemon", "citron", "lemon, zested|lemon, juiced|unwaxed lemon", "citron jaune|citron non traité|citron pressé", "count"),
        _i("apples", "pommes", "apples, peeled and sliced|Granny Smith apples", "pommes golden|pommes épluchées", "count"),
        _i("cream", "crème", "heavy cream|whipping cream|double cream", "crème fraîche épaisse|crème liquide entière", "volume"),
        _i("olive oil", "huile d'olive", "extra-virgin olive oil|olive oil", "huile d'olive vierge extra|huile d'olive", "spoon"),
        _i("garlic", "ail", "garlic cloves, minced|cloves garlic, crushed", "gousses d'ail hachées|gousses d'ail", "count"),
        _i("onion", "oignon", "yellow onion, diced|onion, finely chopped|red onion, sliced", "oignon jaune émincé|oignon haché", "count"),
        _i("shallots", "échalotes", "shallots, minced", "échalotes ciselées", "count"),
        _i("tomatoes", "tomates", "ripe tomatoes, chopped|cherry tomatoes, halved|plum tomatoes", "tomates mûres|tomates cerises|tomates olivettes", "count"),
        _i("carrots", "carottes", "carrots, peeled and diced|carrots, grated", "carottes râpées|carottes en rondelles", "count"),
        _i("potatoes", "pommes de terre", "russet potatoes, cubed|waxy potatoes", "pommes de terre à chair ferme|pommes de terre", "mass"),
        _i("zucchini", "courgettes", "zucchini, sliced|courgettes, diced", "courgettes en dés", "count"),
        _i("bell pepper", "poivron", "red bell pepper, diced|green bell pepper, sliced", "poivron rouge|poivron vert émincé", "count"),
        _i("mushrooms", "champignons", "button mushrooms, sliced|cremini mushrooms", "champignons de Paris émincés", "mass"),
        _i("spinach", "épinards", "baby spinach|fresh spinach leaves", "pousses d'épinards|épinards frais", "mass"),
        _i("basil", "basilic", "fresh basil leaves|basil, torn", "feuilles de basilic frais", "piece"),
        _i("parsley", "persil", "flat-leaf parsley, chopped|fresh parsley", "persil plat haché", "piece"),
        _i("thyme", "thym", "fresh thyme sprigs|dried thyme", "brins de thym|thym séché", "spoon"),
        _i("black pepper", "poivre", "freshly ground black pepper|black pepper", "poivre noir du moulin|poivre", "pinch"),
        _i("chicken", "poulet", "boneless chicken thighs|chicken breasts, cubed", "blancs de poulet|cuisses de poulet désossées", "mass"),
        _i("beef", "bœuf", "ground beef|beef chuck, cubed", "bœuf haché|paleron de bœuf en cubes", "mass"),
        _i("bacon", "lardons", "thick-cut bacon, diced|smoked bacon strips", "lardons fumés|poitrine fumée", "mass"),
        _i("salmon", "saumon", "salmon fillets, skin on|fresh salmon", "pavés de saumon", "mass"),
        _i("shrimp", "crevettes", "raw shrimp, peeled|large prawns", "crevettes décortiquées", "mass"),
        _i("rice", "riz", "long-grain white rice|jasmine rice|arborio rice", "riz basmati|riz arborio|riz long", "mass"),
        _i("pasta", "pâtes", "dried spaghetti|penne pasta|fusilli", "spaghetti|penne|coquillettes", "mass"),
        _i("parmesan", "parmesan", "grated Parmesan cheese|Parmigiano-Reggiano, shaved", "parmesan râpé", "mass"),
        _i("mozzarella", "mozzarella", "fresh mozzarella, torn|shredded mozzarella", "mozzarella di bufala", "mass"),
        _i("cheddar", "cheddar", "sharp cheddar, grated", "cheddar râpé", "mass"),
        _i("gruyere", "gruyère", "Gruyère cheese, grated|Swiss cheese, shredded", "gruyère râpé|comté râpé", "mass"),
        _i("chickpeas", "pois chiches", "canned chickpeas, drained", "pois chiches égouttés", "mass"),
        _i("lentils", "lentilles", "green lentils, rinsed|red lentils", "lentilles vertes du Puy|lentilles corail", "mass"),
        _i("coconut milk", "lait de coco", "canned coconut milk|full-fat coconut milk", "lait de coco", "volume"),
        _i("soy sauce", "sauce soja", "low-sodium soy sauce|soy sauce", "sauce soja salée", "spoon"),
        _i("ginger", "gingembre", "fresh ginger, grated|ginger root, minced", "gingembre frais râpé", "spoon"),
        _i("curry powder", "curry", "mild curry powder|curry powder", "curry en poudre", "spoon"),
        _i("cumin", "cumin", "ground cumin|cumin seeds", "cumin moulu", "spoon"),
        _i("paprika", "paprika", "smoked paprika|sweet paprika", "paprika fumé", "spoon"),
        _i("honey", "miel", "runny honey|honey", "miel liquide|miel de fleurs", "spoon"),
        _i("yogurt", "yaourt", "plain Greek yogurt|natural yogurt", "yaourt nature|yaourt grec", "volume"),
        _i("oats", "flocons d'avoine", "rolled oats|old-fashioned oats", "flocons d'avoine", "mass"),
        _i("walnuts", "noix", "walnuts, chopped|toasted walnut halves", "cerneaux de noix", "mass"),
        _i("almonds", "amandes", "ground almonds|sliced almonds", "poudre d'amandes|amandes effilées", "mass"),
        _i("bananas", "bananes", "ripe bananas, mashed", "bananes bien mûres", "count"),
        _i("strawberries", "fraises", "fresh strawberries, hulled", "fraises équeutées", "mass"),
        _i("stock", "bouillon", "chicken stock|vegetable broth|low-sodium stock", "bouillon de volaille|bouillon de légumes", "volume"),
        _i("white wine", "vin blanc", "dry white wine", "vin blanc sec", "volume"),
        _i("vinegar", "vinaigre", "red wine vinegar|balsamic vinegar|cider vinegar", "vinaigre de vin rouge|vinaigre balsamique", "spoon"),
        _i("mustard", "moutarde", "Dijon mustard|whole-grain mustard", "moutarde de Dijon|moutarde à l'ancienne", "spoon"),
        _i("lettuce", "salade", "head of romaine lettuce, chopped|head of butter lettuce", "laitue|salade verte", "count"),
        _i("cucumber", "concombre", "cucumber, sliced|English cucumber", "concombre en rondelles", "count"),
        _i("avocado", "avocat", "ripe avocados, diced", "avocats mûrs", "count"),
        _i("tortillas", "tortillas", "flour tortillas|corn tortillas", "tortillas de blé", "count"),
        _i("breadcrumbs", "chapelure", "panko breadcrumbs|dry breadcrumbs", "chapelure", "mass"),
        _i("yeast", "levure de boulanger", "active dry yeast|instant yeast", "levure de boulanger sèche", "spoon"),
        _i("water", "eau", "warm water|cold water", "eau tiède|eau froide", "volume"),
    )
}

#: Dish families: title words and the ingredients they draw from (core first, then optional).
FAMILIES: dict[str, dict[str, Any]] = {
    "cake": {
        "en": ["{x} Cake", "{x} Loaf Cake", "Easy {x} Cake", "{x} Muffins", "{x} Bread"],
        "fr": ["Gâteau {x}", "Cake {x}", "Muffins {x}", "Quatre-quarts {x}"],
        "x_en": ["Lemon", "Chocolate", "Banana", "Apple", "Walnut", "Almond", "Vanilla", "Honey", "Strawberry"],
        "x_fr": ["au citron", "au chocolat", "à la banane", "aux pommes", "aux noix", "aux amandes", "à la vanille", "au miel", "aux fraises"],
        "core": ["flour", "sugar", "eggs", "butter"],
        "extra": ["milk", "baking powder", "vanilla", "salt", "lemon", "chocolate", "cocoa", "bananas", "apples", "walnuts", "almonds", "honey", "yogurt", "strawberries", "brown sugar"],
    },
    "pancakes": {
        "en": ["{x} Pancakes", "Fluffy {x} Pancakes", "{x} Crêpes", "{x} Waffles"],
        "fr": ["Crêpes {x}", "Pancakes {x}", "Gaufres {x}"],
        "x_en": ["Classic", "Buttermilk-Style", "Banana", "Oat", "Lemon", "Chocolate Chip", "Sunday", "Strawberry"],
        "x_fr": ["classiques", "à la banane", "à l'avoine", "au citron", "aux pépites de chocolat", "du dimanche", "aux fraises"],
        "core": ["flour", "eggs", "milk"],
        "extra": ["sugar", "butter", "salt", "baking powder", "vanilla", "bananas", "oats", "lemon", "chocolate", "strawberries", "honey"],
    },
    "soup": {
        "en": ["{x} Soup", "Creamy {x} Soup", "{x} Stew", "Hearty {x} Soup"],
        "fr": ["Soupe {x}", "Velouté {x}", "Potage {x}"],
        "x_en": ["Tomato", "Carrot", "Lentil", "Mushroom", "Potato and Leek", "Chicken", "Vegetable", "Pumpkin-Style", "Spinach"],
        "x_fr": ["de tomates", "de carottes", "de lentilles", "de champignons", "de pommes de terre", "au poulet", "de légumes", "d'épinards"],
        "core": ["onion", "stock"],
        "extra": ["garlic", "carrots", "potatoes", "tomatoes", "lentils", "mushrooms", "chicken", "cream", "thyme", "salt", "black pepper", "olive oil", "butter", "spinach", "cumin", "parsley"],
    },
    "pasta": {
        "en": ["{x} Pasta", "Spaghetti {x}", "{x} Penne", "Baked {x} Pasta"],
        "fr": ["Pâtes {x}", "Spaghetti {x}", "Gratin de pâtes {x}"],
        "x_en": ["Garlic", "Tomato Basil", "Carbonara-Style", "Mushroom", "Spinach", "Shrimp", "Bolognese", "Pesto"],
        "x_fr": ["à l'ail", "tomate basilic", "à la carbonara", "aux champignons", "aux épinards", "aux crevettes", "à la bolognaise"],
        "core": ["pasta"],
        "extra": ["olive oil", "garlic", "tomatoes", "basil", "parmesan", "bacon", "eggs", "cream", "mushrooms", "spinach", "shrimp", "beef", "onion", "salt", "black pepper", "mozzarella", "parsley"],
    },
    "salad": {
        "en": ["{x} Salad", "Summer {x} Salad", "{x} Bowl"],
        "fr": ["Salade {x}"],
        "x_en": ["Greek-Style", "Chickpea", "Chicken", "Avocado", "Lentil", "Caprese", "Cucumber", "Salmon"],
        "x_fr": ["grecque", "de pois chiches", "au poulet", "d'avocat", "de lentilles", "caprese", "de concombre", "au saumon"],
        "core": ["olive oil"],
        "extra": ["lettuce", "tomatoes", "cucumber", "avocado", "chickpeas", "lentils", "chicken", "salmon", "mozzarella", "basil", "vinegar", "mustard", "lemon", "salt", "black pepper", "onion", "walnuts", "honey"],
    },
    "stir-fry": {
        "en": ["{x} Stir-Fry", "{x} Fried Rice", "{x} Curry", "Quick {x} Curry"],
        "fr": ["Sauté {x}", "Riz sauté {x}", "Curry {x}"],
        "x_en": ["Chicken", "Shrimp", "Vegetable", "Beef", "Chickpea", "Coconut", "Ginger Garlic"],
        "x_fr": ["au poulet", "aux crevettes", "aux légumes", "au bœuf", "aux pois chiches", "au lait de coco"],
        "core": ["rice"],
        "extra": ["chicken", "shrimp", "beef", "chickpeas", "soy sauce", "ginger", "garlic", "onion", "bell pepper", "carrots", "coconut milk", "curry powder", "cumin", "honey", "eggs", "spinach", "salt"],
    },
    "gratin": {
        "en": ["{x} Gratin", "{x} Bake", "{x} Quiche", "{x} Tart"],
        "fr": ["Gratin {x}", "Quiche {x}", "Tarte {x}"],
        "x_en": ["Potato", "Zucchini", "Bacon and Cheese", "Spinach", "Mushroom", "Onion", "Tomato"],
        "x_fr": ["de courgettes", "aux lardons", "aux épinards", "aux champignons", "à l'oignon", "à la tomate", "au fromage"],
        "core": ["eggs", "cream"],
        "extra": ["potatoes", "zucchini", "bacon", "spinach", "mushrooms", "onion", "tomatoes", "gruyere", "cheddar", "milk", "garlic", "thyme", "salt", "black pepper", "flour", "butter", "mustard"],
    },
    "bread": {
        "en": ["{x} Bread", "{x} Flatbread", "{x} Pizza Dough", "{x} Rolls"],
        "fr": ["Pain {x}", "Pâte à pizza {x}", "Petits pains {x}"],
        "x_en": ["Simple", "Whole Wheat", "Olive Oil", "Honey Oat", "Garlic", "Herb", "Rustic"],
        "x_fr": ["maison", "à l'huile d'olive", "au miel", "à l'ail", "aux herbes", "de campagne"],
        "core": ["flour", "yeast", "water", "salt"],
        "extra": ["olive oil", "honey", "oats", "garlic", "thyme", "butter", "milk", "sugar", "basil"],
    },
}

_UNITS_EN = {
    "mass": ["{n} g", "{o} oz", "{c} cup", "{n} grams"],
    "volume": ["{c} cup", "{n} ml", "{o} fl oz"],
    "count": ["{k}"],
    "spoon": ["{k} tsp", "{k} tbsp", "1 teaspoon", "2 tablespoons"],
    "pinch": ["a pinch of", "{h} tsp"],
    "piece": ["1 bunch", "a handful of"],
}
_UNITS_FR = {
    "mass": ["{n} g de", "{n} grammes de", "{k}00 g de"],
    "volume": ["{n} ml de", "1 verre de", "2 verres de", "{d} cl de"],
    "count": ["{k}"],
    "spoon": ["{k} c. à café de", "{k} c. à soupe de", "1 cuillère de"],
    "pinch": ["1 pincée de", "un peu de"],
    "piece": ["1 bouquet de", "1 poignée de"],
}
#: Ingredients counted one at a time, written in the singular: always 1 of them.
_ONE_OF = {"onion", "bell pepper", "cucumber", "lemon", "lettuce"}
#: Words of a dish's title and the ingredient the title promises (checked in this order).
_TITLE_PROMISES: tuple[tuple[str, str], ...] = (
    (r"pommes de terre|potato", "potatoes"), (r"\bapple|\bpommes\b", "apples"), (r"lemon|citron", "lemon"),
    (r"chocolate|chocolat", "chocolate"), (r"banana|banane", "bananas"), (r"walnut|noix", "walnuts"),
    (r"almond|amande", "almonds"), (r"vanilla|vanille", "vanilla"), (r"honey|miel", "honey"),
    (r"strawberr|fraise", "strawberries"), (r"\boat|avoine", "oats"), (r"tomato|tomate", "tomatoes"),
    (r"carrot|carotte", "carrots"), (r"lentil|lentille", "lentils"), (r"mushroom|champignon", "mushrooms"),
    (r"leek", "onion"), (r"chicken|poulet", "chicken"), (r"spinach|épinard", "spinach"), (r"garlic|\bail\b", "garlic"),
    (r"basil|basilic", "basil"), (r"shrimp|crevette", "shrimp"), (r"bolognese|bolognaise|\bbeef|bœuf", "beef"),
    (r"carbonara|bacon|lardons", "bacon"), (r"chickpea|pois chiches", "chickpeas"), (r"avocado|avocat", "avocado"),
    (r"cucumber|concombre", "cucumber"), (r"salmon|saumon", "salmon"), (r"coconut|coco", "coconut milk"),
    (r"ginger", "ginger"), (r"zucchini|courgette", "zucchini"), (r"cheese|fromage", "gruyere"), (r"caprese", "mozzarella"),
    (r"onion|oignon", "onion"), (r"olive oil|huile d'olive", "olive oil"), (r"herb|herbes", "thyme"),
    (r"whole wheat|complet", "flour"), (r"dauphinois", "potatoes"),
)
_VOWEL_START = tuple("aeiouyhéèêàâîôœAEIOUYHÉ")
_INTROS_EN = [
    "Title: {title}\nIngredients:\n{lines}",
    "Recipe: {title}\n\n{lines}",
    "{title}\nYou will need:\n{lines}",
    "List the ingredients of this recipe.\n{title}\n{lines}",
    "Here is my recipe for {title}:\n{lines}",
]
_INTROS_FR = [
    "Titre : {title}\nIngrédients :\n{lines}",
    "Recette : {title}\n\n{lines}",
    "{title}\nIl vous faut :\n{lines}",
    "Voici ma recette de {title_lower} :\n{lines}",
]


def _quantity(unit: str, lang: str, rng: random.Random, *, one: bool = False) -> str:
    pattern = rng.choice((_UNITS_FR if lang == "fr" else _UNITS_EN)[unit])
    text = pattern.format(
        n=rng.choice([25, 50, 100, 125, 150, 200, 250, 300, 400, 500]),
        o=rng.choice([2, 4, 6, 8, 10, 12, 16]),
        c=rng.choice(["1/4", "1/3", "1/2", "2/3", "3/4", "1", "1 1/2", "2", "3"]),
        k=1 if one else rng.randint(2, 4) if unit == "count" else rng.randint(1, 4),
        h=rng.choice(["1/2", "1", "2"]),
        d=rng.choice([10, 20, 25, 50]),
    )
    for many in ("1 1/2 cup", "2 cup", "3 cup"):
        if text == many:
            return many + "s"
    return text


def _line(quantity: str, form: str, lang: str) -> str:
    """One ingredient line; in French, "de" before a vowel or a mute h becomes "d'" (d'huile, d'œufs)."""
    if lang == "fr" and quantity.endswith(" de") and form.startswith(_VOWEL_START):
        return f"- {quantity[:-3]} d'{form}"
    return f"- {quantity} {form}".replace("  ", " ")


def promised_ingredients(title: str) -> list[str]:
    """The ingredients a dish's title promises ("Banana Pancakes": bananas), in the catalogue's names.

    >>> promised_ingredients("Gratin de pommes de terre"), promised_ingredients("Apple Cake")
    (['potatoes'], ['apples'])
    """
    found: list[str] = []
    rest = title.lower()
    for pattern, name in _TITLE_PROMISES:
        if re.search(pattern, rest):
            found.append(name)
            rest = re.sub(pattern, " ", rest)  # "pommes de terre" is not also "pommes"
    return list(dict.fromkeys(found))


#: Ingredients a dish is named after when it has them: a title promises at most these, and an extra never adds
#: one the title contradicts.
MEATS = ("chicken", "beef", "bacon", "shrimp", "salmon")
#: Titles that promise no meat or fish ("Vegetable Soup", "Sauté aux légumes").
_MEATLESS = r"vegetable|légumes|veggie|végé"


def _coherent(extras: list[str], title: str, promised: list[str]) -> list[str]:
    """The optional ingredients a title allows: none of meat or fish for a meatless title, no other meat or fish
    than the one a title promises, and at most one otherwise (a garlic pasta has bacon or shrimp, not both)."""
    if re.search(_MEATLESS, title.lower()) or any(name in MEATS for name in promised):
        return [name for name in extras if name not in MEATS]
    first_meat = next((name for name in extras if name in MEATS), None)
    return [name for name in extras if name not in MEATS or name == first_meat]


def make_example(rng: random.Random, lang: str | None = None) -> dict[str, Any]:
    """One random recipe and its answer, as an OpenAI chat record (plus a ``meta`` field)."""
    lang = lang or ("fr" if rng.random() < 0.25 else "en")
    family_name = rng.choice(sorted(FAMILIES))
    family = FAMILIES[family_name]
    x = rng.randrange(len(family[f"x_{lang}"]))
    title = rng.choice(family[lang]).format(x=family[f"x_{lang}"][x])
    promised = promised_ingredients(title)
    extras = rng.sample(family["extra"], k=rng.randint(2, min(6, len(family["extra"]))))
    names = list(dict.fromkeys(family["core"] + promised + _coherent(extras, title, promised)))
    rng.shuffle(names)
    meatless = bool(re.search(_MEATLESS, title.lower()))
    lines, answer = [], []
    for name in names:
        ing = CATALOGUE[name]
        forms = ing.fr_forms if lang == "fr" else ing.en_forms
        if meatless:  # a vegetable soup is not made with chicken stock
            forms = tuple(f for f in forms if not re.search(r"chicken|volaille", f)) or forms
        form = rng.choice(forms)
        lines.append(_line(_quantity(ing.unit, lang, rng, one=name in _ONE_OF), form, lang))
        answer.append(ing.fr if lang == "fr" else ing.en)
    intro = rng.choice(_INTROS_FR if lang == "fr" else _INTROS_EN)
    user = intro.format(title=title, title_lower=title[0].lower() + title[1:], lines="\n".join(lines))
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
            {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)},
        ],
        "meta": {"lang": lang, "family": family_name, "title": title},
    }


def generate(n: int, *, seed: int = 18) -> list[dict[str, Any]]:
    """``n`` distinct examples (no two share the same user text), reproducible from ``seed``."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    while len(out) < n:
        example = make_example(rng)
        key = example["messages"][1]["content"]
        if key not in seen:
            seen.add(key)
            out.append(example)
    return out


def answer_of(example: dict[str, Any]) -> list[str]:
    """The gold ingredient list of an example."""
    return json.loads(example["messages"][-1]["content"])


def language_of(example: dict[str, Any]) -> str:
    """``"fr"`` or ``"en"``: the language of an example's gold answer (its ingredient names).

    >>> language_of({"messages": [{"role": "assistant", "content": '["œuf", "farine"]'}]})
    'fr'
    """
    meta = example.get("meta") or {}
    if meta.get("lang") in ("en", "fr"):
        return meta["lang"]
    french = {ing.fr for ing in CATALOGUE.values()} - {ing.en for ing in CATALOGUE.values()}
    return "fr" if any(name in french for name in answer_of(example)) else "en"
