"""Grounded answers: retrieve, number the sources, generate with the one loop, check the citations.

Abstention is decided twice, visibly: before generation when the best retrieved chunk's cosine to the
question is under `ABSTAIN_BELOW` (calibrated on the tuning half of benchmarks/rag.py's questions, never
on the held-out half), and after it when the model itself says the sources do not answer. Citations are
kept only when `[n]` names a source that was in the prompt; any other `[n]` is removed and reported.
An answer that cites nothing is attributed to the source closest to it, marked as such.
`extractive=True` answers without the language model: the sentence of the retrieved sources closest to
the question (MiniLM cosine), quoted with its citation — reliable where a 135M model is not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_playground.errors import ContextOverflow, InputError
from llm_playground.generate import Generation, SamplingParams
from llm_playground.generate.prompt import render
from llm_playground.knowledge.kb import KnowledgeBase
from llm_playground.knowledge.store import Hit
from llm_playground.model.base import LanguageModel

# The best chunk's cosine under which retrieval counts as "found nothing relevant"; benchmarks/rag.py
# prints the value that separates answerable from unanswerable questions on its tuning split.
ABSTAIN_BELOW = 0.32
NOT_FOUND = "The documents do not say."
SYSTEM = ("Answer the question using only the numbered sources. Cite the sources you use like [1] or [2]. "
          f"If the sources do not contain the answer, reply exactly: {NOT_FOUND}")
_REFUSALS = re.compile(r"documents do not say|sources do not (say|contain|mention)|not (mentioned|stated|found) in "
                       r"the (sources|documents)|i (do not|don't) know|no information", re.IGNORECASE)
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Citation:
    n: int
    hit: Hit
    attributed: bool = False  # added by `attribute`, not written by the model

    def to_dict(self) -> dict:
        return {"n": self.n, "source": self.hit.source, "span": [self.hit.start, self.hit.end],
                "score": round(self.hit.score, 6), "title": self.hit.title, "chunk_id": self.hit.chunk_id,
                "attributed": self.attributed}


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    retrieved: list[Hit]
    sources: list[Hit]  # what the prompt held, numbered from 1
    timings: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why it abstained: "retrieval" or "model"
    invalid_citations: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer, "abstained": self.abstained,
                "reason": self.reason, "citations": [c.to_dict() for c in self.citations],
                "invalid_citations": self.invalid_citations,
                "retrieved": [h.to_dict() for h in self.retrieved],
                "timings": {k: round(v, 2) for k, v in self.timings.items()}}


def ask(kb: KnowledgeBase, question: str, model: LanguageModel | None = None, params: SamplingParams | None = None,
        *, k: int = 4, extractive: bool = False, threshold: float = ABSTAIN_BELOW) -> Answer:
    if not question.strip():
        raise InputError("the question is empty", "ask something")
    if model is None and not extractive:
        raise InputError("generating an answer needs a language model", "pass a model, or use extractive=True")
    params = params or SamplingParams()
    if model is not None:
        _check_question_fits(model, question, params)
    started = time.perf_counter()
    retrieved = kb.search(question, k=k)
    timings = {"retrieve_ms": (time.perf_counter() - started) * 1000}
    best = max((h.dense or 0.0 for h in retrieved), default=0.0)
    if best < threshold:
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return Answer(question, NOT_FOUND, True, [], retrieved, [], timings, reason="retrieval")
    if extractive:
        result = _extract(kb, question, retrieved)
    else:
        assert model is not None
        result = attribute(kb, _generate(model, question, retrieved, params, timings), threshold)
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    result.timings = timings
    return result


def _check_question_fits(model: LanguageModel, question: str, params: SamplingParams) -> None:
    tokens = len(model.tokenizer.encode(question))
    room = model.context_length - min(params.max_new_tokens, model.context_length // 2) - 64
    if tokens > room:
        raise ContextOverflow(f"the question has {tokens} tokens but at most {room} fit {model.info.name}'s "
                              f"context of {model.context_length} with the answer", "ask a shorter question")


def build_messages(question: str, sources: Sequence[Hit]) -> list[dict[str, str]]:
    numbered = "\n\n".join(f"[{n}] ({hit.title}) {hit.text}" for n, hit in enumerate(sources, 1))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n{numbered}\n\nQuestion: {question}"}]


def fit_sources(model: LanguageModel, question: str, hits: Sequence[Hit], params: SamplingParams) -> list[Hit]:
    """As many of the best hits as fit the context beside the question and the answer (in rank order)."""
    budget = model.context_length - params.max_new_tokens
    sources: list[Hit] = []
    for hit in hits:
        if len(model.tokenizer.encode(render(model.tokenizer, build_messages(question, [*sources, hit])))) > budget:
            break
        sources.append(hit)
    return sources


def _generate(model: LanguageModel, question: str, retrieved: list[Hit], params: SamplingParams,
              timings: dict[str, float]) -> Answer:
    given = params.model_fields_set
    # Defaults for grounded answers, each only where the user set nothing: greedy decoding, a short answer,
    # and a stop at the first blank line (a 135M model repeats itself after its first paragraph).
    defaults: dict[str, Any] = {"greedy": True} if not {"temperature", "greedy"} & given else {}
    defaults |= {"max_new_tokens": 128} if "max_new_tokens" not in given else {}
    defaults |= {"stop": ["\n\n"]} if "stop" not in given else {}
    params = params.updated(n=1, **defaults)
    sources = fit_sources(model, question, retrieved, params)
    if not sources:
        raise ContextOverflow("not even one source fits the context beside the question",
                              "ask a shorter question, lower --max-new-tokens, or use a model with a longer context")
    prompt = render(model.tokenizer, build_messages(question, sources))
    started = time.perf_counter()
    generation = Generation(model, model.tokenizer.encode(prompt), params)
    for _ in generation:
        pass
    timings["generate_ms"] = (time.perf_counter() - started) * 1000
    text = generation.results[0].text.strip()
    if not text or _REFUSALS.search(text):
        return Answer(question, NOT_FOUND, True, [], retrieved, sources, reason="model")
    text, cited, invalid = check_citations(text, len(sources))
    citations = [Citation(n, sources[n - 1]) for n in cited]
    return Answer(question, text, False, citations, retrieved, sources, invalid_citations=invalid)


def check_citations(text: str, sources: int) -> tuple[str, list[int], list[int]]:
    """(text without citations of sources that were never given, the valid ones in order, the invalid ones)."""
    found = [int(n) for n in _CITATION.findall(text)]
    valid = [n for n in dict.fromkeys(found) if 1 <= n <= sources]
    invalid = sorted({n for n in found if not 1 <= n <= sources})
    if invalid:
        text = re.sub(r" ?\[(\d+)\]", lambda m: m.group(0) if 1 <= int(m.group(1)) <= sources else "", text)
    return text.strip(), valid, invalid


def attribute(kb: KnowledgeBase, answer: Answer, threshold: float = ABSTAIN_BELOW) -> Answer:
    """An answer that cites nothing gets the source closest to it (MiniLM cosine), marked `attributed`:
    small models often answer from a source without writing its number."""
    if answer.abstained or answer.citations or not answer.sources:
        return answer
    vectors = kb.embedder.embed([answer.answer] + [h.text for h in answer.sources])
    scores = vectors[1:] @ vectors[0]
    best = int(np.argmax(scores))
    if scores[best] >= threshold:
        answer.citations = [Citation(best + 1, answer.sources[best], attributed=True)]
        answer.answer = f"{answer.answer} [{best + 1}]"
    return answer


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")  # a sentence ends at .!? + space, or a blank line


def _extract(kb: KnowledgeBase, question: str, retrieved: list[Hit]) -> Answer:
    """The retrieved sentence closest to the question, quoted with its citation."""
    candidates: list[tuple[int, str]] = []
    for n, hit in enumerate(retrieved, 1):
        for piece in _SENTENCE_END.split(hit.text):
            sentence = " ".join(piece.split())
            if len(sentence.split()) >= 5:
                candidates.append((n, sentence))
    if not candidates:
        return Answer(question, NOT_FOUND, True, [], retrieved, retrieved, reason="retrieval")
    vectors = kb.embedder.embed([question] + [s for _, s in candidates])
    # A sentence's own cosine plus its chunk's: a close sentence in an off-topic chunk loses to one in
    # the chunk retrieval trusted most.
    chunk_score = np.array([retrieved[n - 1].dense or 0.0 for n, _ in candidates], np.float32)
    best = int(np.argmax(vectors[1:] @ vectors[0] + chunk_score))
    n, sentence = candidates[best]
    return Answer(question, f"{sentence} [{n}]", False, [Citation(n, retrieved[n - 1])], retrieved, retrieved)
