"""The synthetic family: items generated from a seed, so the default needs no downloaded data.

Domains: `arithmetic` (word problems, numeric answer) and multiple choice in `physics`, `units`,
`logic`, `history`, `biology`; difficulty 1-3 cycles with the index. An id
`synthetic/<domain>/<seed>/<i>` is all that is needed to regenerate its item (`get`). Splits use
disjoint seeds (`train`=1, `val`=2, `test`=3) and, because small domains repeat question stems,
each question (stem + choice set) also belongs to one split only (by a hash: 60/20/20), so no question is in
two splits.

Names: `synthetic` (all domains), `synthetic_arith` (arithmetic only), `synthetic_mc` (the
multiple-choice domains). Numeric answers are graded like GSM8K, letters like MMLU.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import replace

from hieramas_gnn.errors import UserError
from hieramas_gnn.tasks.answers import choice_letter, numbers_equal
from hieramas_gnn.tasks.base import BaseTask, Question, take
from hieramas_gnn.tasks.gsm8k import extract_number
from hieramas_gnn.tasks.mmlu import format_question
from hieramas_gnn.tasks.synthetic_gen import GENERATORS

SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
MC_DOMAINS = ("physics", "units", "logic", "history", "biology")
DOMAINS_BY_KIND = {"all": ("arithmetic",) + MC_DOMAINS, "arith": ("arithmetic",), "mc": MC_DOMAINS}
DEFAULT_PER_DOMAIN = 100
_ID_RE = re.compile(r"synthetic/([a-z]+)/(-?\d+)/(\d+)")


def make_question(domain: str, seed: int, index: int, task: str = "synthetic") -> Question:
    """The item `synthetic/<domain>/<seed>/<index>` (pure function of its three parts)."""
    if domain not in GENERATORS:
        raise UserError(f"unknown synthetic domain {domain!r}; known: {', '.join(GENERATORS)}")
    difficulty = index % 3 + 1
    item = GENERATORS[domain](random.Random(f"{domain}/{seed}/{index}"), difficulty)
    choices = item.get("choices")
    meta = {"domain": domain, "difficulty": difficulty, "seed": seed, "index": index,
            "answer_kind": "choice" if choices else "number", "split": stem_split(item["text"] + "|" + "|".join(sorted(choices or [])))}
    if choices:
        meta["choices"] = choices
    return Question(
        id=f"synthetic/{domain}/{seed}/{index}",
        task=task,
        text=format_question(item["text"], choices) if choices else item["text"],
        gold=item["gold"],
        meta=meta,
    )


@functools.lru_cache(maxsize=1 << 13)
def _made_question(domain: str, seed: int, index: int, task: str) -> Question:
    """`make_question`, memoised (a pure function of its arguments; `get` hands out copies)."""
    return make_question(domain, seed, index, task)


def _fresh(q: Question) -> Question:
    """A copy of `q` with its own `meta` (and choices list), so that no caller shares a mutable part."""
    meta = dict(q.meta)
    if "choices" in meta:
        meta["choices"] = list(meta["choices"])
    return replace(q, meta=meta)


def stem_split(stem: str) -> str:
    """The split a question (stem + its choices as a set) belongs to: 60% train, 20% val, 20% test, by a hash of the text."""
    u = int.from_bytes(hashlib.sha256(stem.encode()).digest()[:8], "big") / 2**64
    return "train" if u < 0.6 else "val" if u < 0.8 else "test"


def _domain_stream(domain: str, seed: int, split: str, task: str) -> Iterator[Question]:
    """Items of one domain and seed whose stem belongs to `split` (stops after 1000 misses)."""
    misses = 0
    for i in itertools.count():
        q = make_question(domain, seed, i, task)
        if q.meta["split"] == split:
            misses = 0
            yield q
        else:
            misses += 1
            if misses > 1000:
                return


class SyntheticTask(BaseTask):
    """Generated arithmetic and multiple-choice items (`kind` = `all` | `arith` | `mc`)."""

    family = "synthetic"

    def __init__(self, kind: str = "all", per_domain: int = DEFAULT_PER_DOMAIN) -> None:
        super().__init__()
        if kind not in DOMAINS_BY_KIND:
            raise UserError(f"synthetic kind must be one of {sorted(DOMAINS_BY_KIND)}, got {kind!r}")
        self.kind = kind
        self.domains = DOMAINS_BY_KIND[kind]
        self.per_domain = per_domain
        self.name = {"all": "synthetic", "arith": "synthetic_arith", "mc": "synthetic_mc"}[kind]
        self.answer_kind = {"all": "mixed", "arith": "number", "mc": "choice"}[kind]

    def load(self, path: str | None = None, split: str = "test", limit: int | None = None,
             seed: int | None = None) -> list[Question]:
        """`per_domain` items per domain (or `limit` in all), domains interleaved, of this split.

        `seed` overrides the split's seed (any integer gives a fresh, reproducible set).
        """
        if path is not None:
            raise UserError(f"task {self.name!r} is generated from a seed; it takes no data path (got {path!r})")
        if split not in SPLIT_SEEDS:
            raise UserError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
        seed = SPLIT_SEEDS[split] if seed is None else seed
        streams = [_domain_stream(d, seed, split, self.name) for d in self.domains]
        if limit is None:
            streams = [itertools.islice(s, self.per_domain) for s in streams]
        interleaved = (q for group in itertools.zip_longest(*streams) for q in group if q is not None)
        return take(interleaved, limit)

    def get(self, question_id: str) -> Question:
        m = _ID_RE.fullmatch(question_id)
        if not m or m.group(1) not in self.domains:
            raise UserError(f"unknown question id {question_id!r} for task {self.name!r} "
                            f"(expected synthetic/<{'|'.join(self.domains)}>/<seed>/<index>)")
        return _fresh(_made_question(m.group(1), int(m.group(2)), int(m.group(3)), self.name))

    def instruction(self) -> str:
        if self.kind == "arith":
            return "Solve step by step, then end with: The answer is <number>."
        if self.kind == "mc":
            return "Think it through, then end your reply with: The answer is (X), where X is the letter of your choice."
        return ("Think it through, then end with: The answer is <answer> — a number for a word problem, "
                "or the letter in parentheses, e.g. (B), for a multiple-choice question.")

    def extract(self, response: str, question: Question) -> str | None:
        if question.meta.get("answer_kind") == "choice":
            return choice_letter(response, "ABCD", question.meta.get("choices"))
        return extract_number(response)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        if question.meta.get("answer_kind") == "choice":
            return extracted is not None and extracted.upper() == question.gold
        return numbers_equal(extracted, question.gold)

    def render_answer(self, answer: str, question: Question) -> str:
        if question.meta.get("answer_kind") == "choice":
            return f"Checking each option in turn, one stands out.\nThe answer is ({answer})."
        return f"Carrying out the steps in order gives the total.\nThe answer is {answer}."
