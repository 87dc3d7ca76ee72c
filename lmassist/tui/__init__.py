"""The Textual app that ``lmassist`` opens with no arguments.

Nothing here is imported by the command line until the app starts: ``lmassist --help`` never pays
for Textual.
"""
