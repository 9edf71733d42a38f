"""keyrot: deactivate, activate and rotate AWS IAM access keys."""

__version__ = "0.1.0"
