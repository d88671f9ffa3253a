"""The join token's text: minted at random, read back, and refused without repeating it."""

from __future__ import annotations

import pytest

from meshline.join_token import JoinTokenFormatError, id_problem, mint, parse


def test_minted_tokens_read_back_and_differ() -> None:
    first, second = mint(), mint()
    assert first != second
    text = str(first)
    assert text.startswith("mlj_") and len(first.token_id) == 8 and len(first.secret) == 43
    assert parse(f"  {text}\n") == first
    assert id_problem(first.token_id) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no join token given"),
        ("hunter2", "should look like mlj_<id>.<secret>"),
        ("mlj_abc.def", "the id after mlj_ should be 8 hex digits"),
        ("mlj_ABCDEF01." + "A" * 43, "the id after mlj_ should be 8 hex digits"),
        ("mlj_0123abcd.tooshort", "join token 0123abcd: the secret after the dot is not 43"),
        ("mlj_0123abcd." + "A" * 42 + "=", "the secret after the dot is not 43"),
    ],
)
def test_malformed_tokens_are_named_but_never_repeated(text: str, message: str) -> None:
    with pytest.raises(JoinTokenFormatError, match=message) as caught:
        parse(text)
    secret_part = text.partition(".")[2]
    if secret_part:
        assert secret_part not in str(caught.value)


def test_id_problem() -> None:
    assert id_problem("0123abcd") is None
    assert "is not a join token id" in str(id_problem("eu"))
