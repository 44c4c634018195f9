"""Where the identity appears (`[target] identity_in`): each mode's messages, the baseline rule, multi-turn items."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.core.identities import Identity, Where, personalize

MINOR = Identity("minor", "a minor", "Age")
PROMPT = "You are Acme's bot. Do not give legal advice."
TURNS = (("user", "My code is 17."), ("assistant", "Noted."))


def test_system_mode_is_todays_behaviour() -> None:
    assert personalize("Q?", MINOR, system_prompt=PROMPT) == [
        {"role": "system", "content": f"{PROMPT} I am a minor."}, {"role": "user", "content": "Q?"}]
    assert personalize("Q?", None, system_prompt=PROMPT) == [
        {"role": "system", "content": PROMPT}, {"role": "user", "content": "Q?"}]
    assert personalize("Q?", MINOR, single_turn=True) == [
        {"role": "user", "content": "You are a helpful assistant. I am a minor.\n\nQ?"}]


def test_user_prefix_opens_the_first_user_turn_and_leaves_the_system_prompt() -> None:
    where = Where("user-prefix", sentence="As {identity}, I ask:")
    assert personalize("Q?", MINOR, system_prompt=PROMPT, where=where) == [
        {"role": "system", "content": PROMPT}, {"role": "user", "content": "As a minor, I ask: Q?"}]
    assert personalize("Q?", MINOR, system_prompt=PROMPT, where=where, turns=TURNS)[1] == {
        "role": "user", "content": "As a minor, I ask: My code is 17."}
    assert personalize("Q?", MINOR, where=where, single_turn=True) == [
        {"role": "user", "content": "You are a helpful assistant.\n\nAs a minor, I ask: Q?"}]


def test_user_turn_is_a_prior_exchange_the_baseline_lacks() -> None:
    where = Where("user-turn", assistant_line="Got it.")
    asked = personalize("Q?", MINOR, system_prompt=PROMPT, where=where, turns=TURNS)
    assert asked == [{"role": "system", "content": PROMPT}, {"role": "user", "content": "I am a minor."},
                     {"role": "assistant", "content": "Got it."}, {"role": "user", "content": "My code is 17."},
                     {"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Q?"}]
    assert personalize("Q?", None, system_prompt=PROMPT, where=where, turns=TURNS) == [asked[0], *asked[3:]]


def test_profile_fills_the_placeholder_and_the_baseline_gets_the_neutral_text() -> None:
    where = Where("profile", placeholder="<<profile>>", neutral="(none)")
    prompt = "Bot.\nUser profile: <<profile>>\nBe brief."
    assert personalize("Q?", MINOR, system_prompt=prompt, where=where)[0]["content"] == \
        "Bot.\nUser profile: I am a minor.\nBe brief."
    assert personalize("Q?", None, system_prompt=prompt, where=where)[0]["content"] == \
        "Bot.\nUser profile: (none)\nBe brief."


@given(mode=st.sampled_from(["system", "user-prefix", "user-turn", "profile"]),
       text=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12),
       question=st.text(min_size=1, max_size=40), single=st.booleans(), multi=st.booleans())
def test_the_baseline_differs_only_by_the_identity(mode: str, text: str, question: str, single: bool,
                                                   multi: bool) -> None:
    """Removing the identity sentence (and user-turn's exchange) from the identity's messages gives the baseline."""
    who = Identity("x", text, "Custom")
    where = Where(mode, placeholder="{profile}")  # type: ignore[arg-type]
    prompt = "Bot. {profile}" if mode == "profile" else "Bot."
    turns = TURNS if multi else ()
    asked = personalize(question, who, system_prompt=prompt, where=where, single_turn=single, turns=turns)
    base = personalize(question, None, system_prompt=prompt, where=where, single_turn=single, turns=turns)
    sentence = f"I am {text}."
    if mode == "user-turn":
        line = {"role": "assistant", "content": where.assistant_line}
        if single:  # no system role: the system line opens the first user turn, here the identity's
            assert asked[0]["content"] == f"Bot.\n\n{sentence}" and asked[1] == line
            assert [{"role": "user", "content": f"Bot.\n\n{asked[2]['content']}"}, *asked[3:]] == base
        else:
            assert [asked[0], *asked[3:]] == base and asked[1]["content"] == sentence and asked[2] == line
        return
    assert len(asked) == len(base)
    for a, b in zip(asked, base, strict=True):
        stripped = a["content"].replace(f" {sentence}", "").replace(f"{sentence} ", "").replace(sentence, "")
        assert a["role"] == b["role"] and stripped.strip() == b["content"].strip()
    assert sum(sentence in m["content"] for m in asked) == 1 and not any(sentence in m["content"] for m in base)


def test_no_system_baseline_drops_the_system_message_in_every_mode() -> None:
    for mode in ("user-prefix", "user-turn"):
        assert personalize("Q?", None, system_prompt=PROMPT, where=Where(mode), baseline="no-system") == [  # type: ignore[arg-type]
            {"role": "user", "content": "Q?"}]


@pytest.mark.parametrize("mode", ["user-prefix", "user-turn", "profile"])
def test_config_reads_the_placement(tmp_path, mode: str) -> None:  # type: ignore[no-untyped-def]
    from guards.config.settings import load_settings

    path = tmp_path / "t.toml"
    path.write_text(f'[target]\nsystem_prompt = "Bot. [who]"\nidentity_in = "{mode}"\nprofile_placeholder = "[who]"\n'
                    'identity_template = "Me: {identity}."\nassistant_line = "OK."\n')
    where = load_settings(path, environ={}).where
    assert (where.mode, where.sentence, where.assistant_line, where.placeholder) == (mode, "Me: {identity}.", "OK.",
                                                                                   "[who]")
