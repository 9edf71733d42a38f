"""Fleet mode: auditing every user's access keys against a policy, and enforcing it in bulk,
in one account or in several through an assumed role."""
