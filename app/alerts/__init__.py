"""Alerts that reach people: a signed webhook and/or Slack, once per incident (issue 16)."""
