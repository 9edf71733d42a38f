"""Fleet mode: auditing every user's access keys against a policy, and enforcing it in bulk,
in one account or in several through an assumed role."""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return count with noun in the right number: "1 account", "2 accounts"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
