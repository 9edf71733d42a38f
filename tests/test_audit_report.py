"""Parsing the IAM credential report's CSV, as AWS and moto print it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keyrot.errors import AwsRequestError
from keyrot.fleet.report import ROOT_USER, merge_listed_keys, parse_report
from keyrot.models import AccessKey, LastUse

HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
ROOT = (
    "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,"
    "2024-05-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,"
    "N/A,N/A,N/A,N/A,false,N/A,false,N/A"
)
NO_KEYS = (
    "Alice,arn:aws:iam::123456789012:user/Alice,2024-01-01T00:00:00+00:00,true,"
    "no_information,2024-01-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,"
    "N/A,N/A,false,N/A,false,N/A"
)
TWO_KEYS = (
    "Bob,arn:aws:iam::123456789012:user/team/Bob,2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,"
    "false,true,2024-02-03T04:05:06+00:00,2024-06-01T12:00:00+00:00,eu-west-1,s3,false,"
    "2024-03-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A"
)
SECOND_SLOT_ONLY = (
    "Carol,arn:aws:iam::123456789012:user/Carol,2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,"
    "false,false,N/A,N/A,N/A,N/A,true,2024-04-01T00:00:00+00:00,no_information,not_supported,"
    "not_supported,false,N/A,false,N/A"
)


def report_text(*lines, newline="\n"):
    return newline.join([HEADER, *lines]) + newline


def test_root_row_without_keys():
    report = parse_report(report_text(ROOT))

    (root,) = report.users
    assert root.user_name == ROOT_USER
    assert root.is_root
    assert root.keys == ()


def test_user_without_keys():
    (alice,) = parse_report(report_text(NO_KEYS)).users

    assert alice.keys == ()
    assert not alice.is_root


def test_two_keys_with_last_use():
    (bob,) = parse_report(report_text(TWO_KEYS)).users

    first, second = bob.keys
    assert bob.user_name == "Bob"
    assert (first.slot, first.status) == (1, "Active")
    assert first.create_date == datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert first.last_use == LastUse(datetime(2024, 6, 1, 12, tzinfo=UTC), "s3", "eu-west-1")
    assert (second.slot, second.status) == (2, "Inactive")
    assert second.last_use == LastUse(None, None, None)


def test_key_in_second_slot_only():
    (carol,) = parse_report(report_text(SECOND_SLOT_ONLY)).users

    (key,) = carol.keys
    assert key.slot == 2
    assert key.active
    assert key.last_use == LastUse(None, None, None)


def test_crlf_lines():
    report = parse_report(report_text(ROOT, NO_KEYS, TWO_KEYS, newline="\r\n"))

    assert [user.user_name for user in report.users] == [ROOT_USER, "Alice", "Bob"]
    assert len(report.users[2].keys) == 2


def test_missing_column_raises():
    text = report_text(TWO_KEYS).replace("access_key_2_last_used_date", "something_else")

    with pytest.raises(AwsRequestError, match="no column access_key_2_last_used_date"):
        parse_report(text)


def test_unreadable_date_names_line_and_column():
    text = report_text(NO_KEYS, TWO_KEYS.replace("2024-02-03T04:05:06+00:00", "yesterday"))

    with pytest.raises(AwsRequestError, match="line 3 has 'yesterday' in column "
                                              "access_key_1_last_rotated"):
        parse_report(text)


def listed(key_id, created, status="Active"):
    return AccessKey("Bob", key_id, status, created)


def test_merge_matches_by_creation_second():
    (bob,) = parse_report(report_text(TWO_KEYS)).users
    keys = [
        listed("AKIASECONDKEY0000000", datetime(2024, 3, 1, 0, 0, 0, 250000, tzinfo=UTC),
               "Inactive"),
        listed("AKIAFIRSTKEY00000000", datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ]

    merged = merge_listed_keys(keys, bob.keys)

    assert [key.access_key_id for key in merged] == ["AKIASECONDKEY0000000",
                                                     "AKIAFIRSTKEY00000000"]
    assert merged[0].last_use == LastUse(None, None, None)
    assert merged[1].last_use == LastUse(datetime(2024, 6, 1, 12, tzinfo=UTC), "s3",
                                         "eu-west-1")


def test_merge_leaves_new_key_unknown():
    (bob,) = parse_report(report_text(TWO_KEYS)).users
    new_key = listed("AKIANEWKEY0000000000", datetime(2025, 1, 1, tzinfo=UTC))

    (merged,) = merge_listed_keys([new_key], bob.keys)

    assert merged.last_use is None
