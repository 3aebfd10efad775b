"""Item generators of the synthetic family: one function per domain, `(rng, difficulty) -> item`.

Every item is a dict `{"text", "gold", "choices"?}` computed from a `random.Random`, so the same
(domain, seed, index) always gives the same item. Difficulty is 1 (one step), 2 or 3 (more steps,
closer distractors). The fact tables hold well-known, uncontroversial facts.
"""

from __future__ import annotations

import random
from fractions import Fraction

NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
ITEMS = [("apples", "basket"), ("pencils", "box"), ("stickers", "sheet"), ("eggs", "carton"),
         ("marbles", "bag"), ("cookies", "tray"), ("books", "shelf"), ("cards", "pack")]


def mc(rng: random.Random, question: str, correct: str, distractors: list[str]) -> dict:
    """A 4-choice item: the correct text plus the first 3 distinct distractors, shuffled."""
    wrong: list[str] = []
    for d in distractors:
        if d != correct and d not in wrong:
            wrong.append(d)
    if len(wrong) < 3:
        raise ValueError(f"not enough distinct distractors for {question!r}")
    choices = [correct] + wrong[:3]
    rng.shuffle(choices)
    return {"text": question, "choices": choices, "gold": "ABCD"[choices.index(correct)]}


def arithmetic(rng: random.Random, difficulty: int) -> dict:
    """Word problems with 1, 2 or 3-4 integer operations."""
    name, other = rng.sample(NAMES, 2)
    thing, holder = rng.choice(ITEMS)
    if difficulty == 1:
        a, b = rng.randint(5, 60), rng.randint(2, 40)
        text = f"{name} has {a} {thing}. {other} gives {name} {b} more. How many {thing} does {name} have now?"
        return {"text": text, "gold": str(a + b)}
    if difficulty == 2:
        n, per, eaten = rng.randint(3, 12), rng.randint(4, 15), rng.randint(1, 20)
        text = (f"{name} buys {n} {holder}s of {thing} with {per} {thing} in each {holder}, then gives away "
                f"{eaten}. How many {thing} does {name} keep?")
        return {"text": text, "gold": str(n * per - eaten)}
    groups, per, price, extra = rng.randint(3, 9), rng.randint(2, 8), rng.randint(2, 9), rng.randint(5, 50)
    total = groups * per
    share = rng.choice([d for d in (2, 3, 4, 6) if total % d == 0] or [1])
    text = (f"{name} packs {groups} {holder}s with {per} {thing} each and splits them equally among {share} "
            f"friends. Each friend sells their {thing} for ${price} apiece and also earns a ${extra} tip. "
            f"How many dollars does each friend end up with?")
    return {"text": text, "gold": str(total // share * price + extra)}


def physics(rng: random.Random, difficulty: int) -> dict:
    """Kinematics and mechanics formulas; higher levels need a unit conversion or two steps."""
    if difficulty == 1:
        d, t = rng.randint(2, 30) * 10, rng.randint(2, 10)
        return mc(rng, f"A cart moves {d * t} m in {t} s at constant speed. What is its speed?",
                  f"{d} m/s", [f"{d * t * t} m/s", f"{d // 2} m/s", f"{d * 2} m/s", f"{d + t} m/s"])
    if difficulty == 2:
        m, a = rng.randint(2, 20), rng.randint(2, 9)
        return mc(rng, f"What net force gives a {m} kg mass an acceleration of {a} m/s^2?",
                  f"{m * a} N", [f"{m + a} N", f"{m * a * 2} N", f"{m * a // 2 or 1} N", f"{m * a + m} N"])
    m, v = rng.randint(1, 10) * 2, rng.randint(2, 12)
    ke = m * v * v // 2
    return mc(rng, f"A {m} kg ball moves at {v} m/s. What is its kinetic energy?",
              f"{ke} J", [f"{m * v * v} J", f"{m * v // 2} J", f"{m * v} J", f"{ke + m} J"])


UNIT_STEPS = [("km", "m", 1000), ("m", "cm", 100), ("h", "min", 60), ("min", "s", 60), ("kg", "g", 1000), ("L", "mL", 1000)]


def units(rng: random.Random, difficulty: int) -> dict:
    """Unit conversions: one factor, a factor the other way, or a compound unit (km/h -> m/s)."""
    if difficulty < 3:
        big, small, f = rng.choice(UNIT_STEPS)
        x = rng.randint(2, 90)
        if difficulty == 1:
            return mc(rng, f"How many {small} are in {x} {big}?", f"{x * f} {small}",
                      [f"{x * f * 10} {small}", f"{x * f // 10} {small}", f"{x + f} {small}", f"{x * f * 100} {small}"])
        return mc(rng, f"Express {x * f} {small} in {big}.", f"{x} {big}",
                  [f"{x * 10} {big}", f"{x * f} {big}", f"{x * 100} {big}", f"{x + 1} {big}"])
    v = rng.randint(1, 20) * 18
    return mc(rng, f"A train travels at {v} km/h. What is that speed in m/s?", f"{v * 5 // 18} m/s",
              [f"{v * 18 // 5} m/s", f"{v * 1000} m/s", f"{v // 60} m/s", f"{v * 5 // 18 + 10} m/s"])


def logic(rng: random.Random, difficulty: int) -> dict:
    """Truth values of propositional formulas of growing depth, over named true/false atoms."""
    atoms = {p: rng.random() < 0.5 for p in "PQR"}
    depth = difficulty + 1
    expr, value = _formula(rng, atoms, depth)
    facts = ", ".join(f"{p} is {'true' if v else 'false'}" for p, v in atoms.items())
    truth = "True" if value else "False"
    return mc(rng, f"Given that {facts}, what is the truth value of: {expr}?",
              truth, ["False" if value else "True", "Cannot be determined", "Both true and false"])


def _formula(rng: random.Random, atoms: dict[str, bool], depth: int) -> tuple[str, bool]:
    if depth == 0:
        p = rng.choice(sorted(atoms))
        return p, atoms[p]
    op = rng.choice(["and", "or", "not", "implies"])
    a, va = _formula(rng, atoms, depth - 1)
    if op == "not":
        return f"not ({a})", not va
    b, vb = _formula(rng, atoms, rng.randint(0, depth - 1))
    value = {"and": va and vb, "or": va or vb, "implies": (not va) or vb}[op]
    return f"({a} {op} {b})", value


EVENTS = [("the assassination of Julius Caesar", -44), ("the coronation of Charlemagne as emperor", 800),
          ("the Battle of Hastings", 1066), ("the sealing of Magna Carta", 1215),
          ("the fall of Constantinople to the Ottomans", 1453), ("Columbus's first voyage to the Americas", 1492),
          ("Luther's Ninety-five Theses", 1517), ("the defeat of the Spanish Armada", 1588),
          ("the Peace of Westphalia", 1648), ("the US Declaration of Independence", 1776),
          ("the storming of the Bastille", 1789), ("Napoleon's coronation as emperor", 1804),
          ("the Battle of Waterloo", 1815), ("the start of the American Civil War", 1861),
          ("the Meiji Restoration", 1868), ("the unification of Germany", 1871),
          ("the Wright brothers' first powered flight", 1903), ("the start of World War I", 1914),
          ("the October Revolution in Russia", 1917), ("the signing of the Treaty of Versailles", 1919),
          ("the Wall Street Crash", 1929), ("the start of World War II in Europe", 1939),
          ("the founding of the United Nations", 1945), ("the independence of India", 1947),
          ("the launch of Sputnik 1", 1957), ("the Cuban Missile Crisis", 1962),
          ("the Apollo 11 Moon landing", 1969), ("the Chernobyl disaster", 1986),
          ("the fall of the Berlin Wall", 1989), ("the dissolution of the Soviet Union", 1991)]


def history(rng: random.Random, difficulty: int) -> dict:
    """Which of four dated events came first; harder levels pick events closer in time."""
    span = {1: 30, 2: 12, 3: 6}[difficulty]  # window over the sorted table: smaller = closer dates
    start = rng.randint(0, len(EVENTS) - span)
    picked = rng.sample(EVENTS[start : start + span], 4)
    first = min(picked, key=lambda e: e[1])
    return mc(rng, "Which of these events happened first?", _cap(first[0]),
              [_cap(e[0]) for e in picked if e is not first])


ORGANELLES = {"mitochondrion": "producing most of the cell's ATP", "ribosome": "synthesising proteins",
              "chloroplast": "carrying out photosynthesis", "lysosome": "breaking down waste with enzymes",
              "nucleus": "storing the cell's DNA", "Golgi apparatus": "modifying and packaging proteins"}
ANIMAL_CLASS = {"whale": "mammal", "bat": "mammal", "penguin": "bird", "ostrich": "bird", "frog": "amphibian",
                "salamander": "amphibian", "shark": "fish", "salmon": "fish", "crocodile": "reptile",
                "turtle": "reptile", "dolphin": "mammal", "eagle": "bird"}


def biology(rng: random.Random, difficulty: int) -> dict:
    """Organelle functions, animal classes, and single-gene Punnett-square probabilities."""
    if difficulty == 1:
        organelle = rng.choice(sorted(ORGANELLES))
        return mc(rng, f"Which organelle is mainly responsible for {ORGANELLES[organelle]}?", _cap(organelle),
                  [_cap(o) for o in rng.sample(sorted(set(ORGANELLES) - {organelle}), 3)])
    if difficulty == 2:
        animal = rng.choice(sorted(ANIMAL_CLASS))
        cls = ANIMAL_CLASS[animal]
        others = sorted({"mammal", "bird", "amphibian", "fish", "reptile"} - {cls})
        return mc(rng, f"To which class of vertebrates does the {animal} belong?", _cap(cls),
                  [_cap(o) for o in rng.sample(others, 3)])
    p1, p2 = rng.choice(["AA", "Aa", "aa"]), rng.choice(["Aa", "Aa", "aa"])
    target = rng.choice(["AA", "Aa", "aa"])
    kids = [("".join(sorted(x + y))) for x in p1 for y in p2]
    prob = Fraction(sum(k == target for k in kids), 4)
    text = f"In a cross {p1} x {p2} of a single gene, what is the probability that a child is {target}?"
    fracs = ["0", "1/4", "1/2", "3/4", "1"]
    return mc(rng, text, str(prob), [f for f in rng.sample(fracs, len(fracs)) if f != str(prob)])


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


GENERATORS = {"arithmetic": arithmetic, "physics": physics, "units": units, "logic": logic,
              "history": history, "biology": biology}
