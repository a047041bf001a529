"""Slack: slack_bolt's AsyncApp over Socket Mode or HTTP, on top of the core."""

from adapters.slack.app import SlackAdapter, require_slack_settings

__all__ = ["SlackAdapter", "require_slack_settings"]
