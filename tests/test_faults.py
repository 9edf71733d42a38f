"""Failures injected at the HTTP level between keyrot and the local IAM endpoint."""

from __future__ import annotations

import pytest
from conftest import create_user_with_keys, run


@pytest.fixture
def bob_key(iam):
    return create_user_with_keys(iam, "Bob", 1)[0].access_key_id


def test_throttling_that_clears_succeeds(proxy, bob_key):
    proxy.fail("UpdateAccessKey", 400, "Throttling", "Rate exceeded", times=2)

    result = run("deactivate", "--user", "Bob", bob_key, "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert proxy.actions().count("UpdateAccessKey") == 3
    assert '"Changed": [\n    "' + bob_key in result.stdout


def test_throttling_that_never_clears_exits_1(proxy, bob_key):
    proxy.fail("UpdateAccessKey", 400, "Throttling", "Rate exceeded", times=None)

    result = run("deactivate", "--user", "Bob", bob_key)

    assert result.exit_code == 1
    assert "Throttling" in result.stderr
    assert "after 3 attempts" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_error_exits_1(proxy, bob_key):
    proxy.fail("ListAccessKeys", 500, "ServiceFailure", "Internal failure", times=None)

    result = run("list", "--user", "Bob")

    assert result.exit_code == 1
    assert "ServiceFailure" in result.stderr
    assert "HTTP 500" in result.stderr


def test_read_timeout_exits_1(proxy, bob_key):
    proxy.add_rule("ListAccessKeys", delay=3.0, times=None)

    result = run("list", "--user", "Bob", "--timeout", "0.5")

    assert result.exit_code == 1
    assert "did not respond in time, even after retries: raise --timeout" in result.stderr


def test_expired_token_exits_4(proxy, bob_key):
    proxy.fail("ListAccessKeys", 403, "ExpiredToken", "The security token included in the "
               "request is expired", times=None)

    result = run("list", "--user", "Bob")

    assert result.exit_code == 4
    assert "expired" in result.stderr


def test_unreachable_endpoint_exits_1_quickly():
    result = run("list", "--user", "Bob", "--endpoint-url", "http://127.0.0.1:9")

    assert result.exit_code == 1
    assert "http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize("page", [b"<!DOCTYPE html><html><body><p>Bad gateway</body></html>",
                                  b"<html><body>Bad gateway</body></html>"])
def test_html_response_exits_1_without_traceback(proxy, bob_key, page):
    proxy.add_rule("ListAccessKeys", times=None, rewrite=lambda body: page)

    result = run("list", "--user", "Bob")

    assert result.exit_code == 1
    assert "the endpoint's response is not an AWS API response" in result.stderr
    assert "Traceback" not in result.stderr
