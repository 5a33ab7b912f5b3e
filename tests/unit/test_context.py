"""Retrieval of tenant context passages (``shared.llm.context``), no servers."""

from __future__ import annotations

from shared.llm.context import MAX_PASSAGE_CHARS, Passage, retrieve, split_passages

DOCUMENTS = [
    (
        "competitors",
        "Our competitors are Umbrella Corp and Initrode.\n\n"
        "We never discount against Umbrella.",
    ),
    ("glossary", "Enterprise plan: the annual plan with SSO.\nStarter plan: monthly."),
    ("team", "Jane leads EMEA sales. Bob runs support."),
]


def test_a_request_gets_the_passages_that_share_its_terms_best_first() -> None:
    found = retrieve(DOCUMENTS, "Tell me when a customer mentions a competitor")

    assert [p.doc for p in found] == ["competitors", "competitors"]
    assert found[0].text == "Our competitors are Umbrella Corp and Initrode."


def test_stemming_matches_other_forms_of_a_word() -> None:
    found = retrieve(DOCUMENTS, "deals on enterprise plans")

    assert [p.doc for p in found] == ["glossary"]


def test_an_unrelated_or_empty_request_gets_no_context() -> None:
    assert retrieve(DOCUMENTS, "weather in Paris") == []
    assert retrieve(DOCUMENTS, "") == []
    assert retrieve(DOCUMENTS, "the and of !!!") == []
    assert retrieve([], "competitor") == []


def test_at_most_k_passages_come_back() -> None:
    documents = [(f"d{n}", f"competitor number {n}") for n in range(10)]

    assert len(retrieve(documents, "competitor", k=3)) == 3


def test_a_passage_renders_with_its_documents_name() -> None:
    assert Passage("team", "Jane leads.").render() == "[team] Jane leads."


def test_documents_split_into_paragraphs_and_long_ones_into_bounded_pieces() -> None:
    long_line = "A sentence of words. " * 60
    text = f"First paragraph.\n\n{long_line}\n\nLast.\nline two"

    passages = split_passages("doc", text)

    assert passages[0].text == "First paragraph."
    assert passages[-1].text == "Last.\nline two"
    assert all(len(p.text) <= MAX_PASSAGE_CHARS for p in passages)
    assert len(passages) > 3
    unbroken = split_passages("doc", "x" * (2 * MAX_PASSAGE_CHARS + 10))
    assert [len(p.text) for p in unbroken] == [MAX_PASSAGE_CHARS] * 2 + [10]
