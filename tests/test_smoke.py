from conftest import create_user_with_keys, run


def test_list_shows_keys(iam):
    keys = create_user_with_keys(iam, "Bob", 2)
    result = run("list", "--user", "Bob", "--output", "text")
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[1] for line in result.stdout.splitlines()] == [
        key.access_key_id for key in keys
    ]
