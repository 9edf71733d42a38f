"""Click commands: each module parses options, calls typed logic and renders the result.

Command modules import boto3 and rich inside the command functions, not at the top, so that
`keyrot --help` and shell completion start without loading them.
"""
