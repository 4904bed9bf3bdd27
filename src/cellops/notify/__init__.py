"""Outgoing webhooks: what the fleet's rollouts do, posted to Slack or any HTTP receiver,
signed, retried, and every attempt recorded in the store."""
