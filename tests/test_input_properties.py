"""Property tests: no generated input produces a traceback, and rejected input sends nothing."""

from __future__ import annotations

import re

from conftest import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.validation import ACCESS_KEY_ID_PATTERN, USER_NAME_PATTERN

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6}
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Text that is valid in argv: no NUL, which no shell can pass.
argument_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=140,
)
near_valid_key_ids = st.from_regex(r"[A-Za-z0-9_\-\.é]{10,130}", fullmatch=True)
near_valid_user_names = st.from_regex(r"[A-Za-z0-9+=,.@_\-/ ø]{0,70}", fullmatch=True)


def assert_clean_failure(result) -> None:
    assert result.exit_code in DOCUMENTED_EXIT_CODES, result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code != 0:
        assert result.stderr.startswith("keyrot: error: ")


@PROPERTY_SETTINGS
@given(user_name=st.one_of(argument_text, near_valid_user_names),
       key_id=st.one_of(argument_text, near_valid_key_ids))
def test_deactivate_input_never_crashes(proxy, user_name, key_id):
    sent_before = len(proxy.requests)

    result = run("deactivate", "--user", user_name, key_id)

    assert_clean_failure(result)
    valid = USER_NAME_PATTERN.fullmatch(user_name) and ACCESS_KEY_ID_PATTERN.fullmatch(key_id)
    if not valid and not key_id.startswith("-") and not user_name.startswith("-"):
        assert result.exit_code == 2
        assert len(proxy.requests) == sent_before


@PROPERTY_SETTINGS
@given(option=st.sampled_from(["--output", "--region", "--endpoint-url", "--timeout",
                               "--profile"]),
       value=argument_text)
def test_option_values_never_crash(proxy, option, value):
    result = run("list", "--user", "Bob", option, value)

    assert_clean_failure(result)


@PROPERTY_SETTINGS
@given(output=argument_text.filter(lambda text: text not in ("table", "json", "text")))
def test_unknown_output_format_exits_2(proxy, output):
    sent_before = len(proxy.requests)

    result = run("list", "--user", "Bob", "--output", output)

    assert result.exit_code == 2
    assert len(proxy.requests) == sent_before


@PROPERTY_SETTINGS
@given(key_id=near_valid_key_ids)
def test_key_id_rule_matches_iam_pattern(proxy, key_id):
    result = run("deactivate", "--user", "Bob", "--dry-run", key_id)

    iam_valid = re.fullmatch(r"[A-Za-z0-9_]{16,128}", key_id) is not None
    assert (result.exit_code == 2) == (not iam_valid) or key_id.startswith("-")
