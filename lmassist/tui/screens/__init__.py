"""Screens of the chat app, one per module."""
