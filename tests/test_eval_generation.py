"""Generation metrics against hand-computed cases (SQuAD-style EM/F1, ROUGE-L by LCS, term use)."""

import pytest

from nichetune.eval.generation import exact_match, generation_metrics, rouge_l, term_metrics, token_f1


def test_exact_match_and_token_f1_follow_the_squad_normalisation():
    assert exact_match("The Compiler!", "compiler") == 1.0
    assert exact_match("a compiler", "an interpreter") == 0.0
    # prediction "translates source code" vs reference "the compiler translates code": common {translates, code}
    assert token_f1("translates source code", "the compiler translates code") == pytest.approx(
        2 * (2 / 3) * (2 / 3) / (2 / 3 + 2 / 3))
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_rouge_l_is_the_lcs_f1():
    # LCS of "a b c d e" and "a c e f" is "a c e" (3): P = 3/5, R = 3/4
    p, r = 3 / 5, 3 / 4
    assert rouge_l("a b c d e", "a c e f") == pytest.approx(2 * p * r / (p + r))
    assert rouge_l("x y", "a b") == 0.0 and rouge_l("", "a") == 0.0


def test_term_metrics_count_glossary_terms_and_forbidden_words():
    glossary = ["compiler", "machine code", "kernel"]
    preds = ["A compiler emits machine code.", "The kernel is a compiler.", "No idea, lol"]
    refs = ["A compiler translates to machine code.", "The kernel manages memory.", "An operating system kernel."]
    m = term_metrics(preds, refs, glossary, forbidden=["lol"])
    # references mention 2 + 1 + 1 = 4 terms; outputs hit 2 + 1 + 0 = 3; outputs mention 2 + 2 = 4, 3 right
    assert m == {"term_recall": 0.75, "term_precision": 0.75, "forbidden_rate": pytest.approx(1 / 3),
                 "terms_in_references": 4}
    assert generation_metrics(["compiler"], ["the compiler"])["exact_match"] == 1.0
