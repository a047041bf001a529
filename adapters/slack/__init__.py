"""Slack: slack_bolt's AsyncApp over Socket Mode or HTTP, on top of the core."""

from adapters.slack.app import SlackAdapter

__all__ = ["SlackAdapter"]
