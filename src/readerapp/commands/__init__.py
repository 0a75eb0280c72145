"""Subcommands of ``readerapp``: each module defines ``register(subparsers)``.

Registration must stay cheap and Qt-free; handlers import what they need when they run.
"""
