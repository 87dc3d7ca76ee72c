"""Widgets of the chat app, one per module."""
