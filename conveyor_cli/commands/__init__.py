"""The ``conveyor`` commands, one module per command group.

:mod:`.upload` (``conveyor upload``), :mod:`.datasets`, :mod:`.assets`, :mod:`.quality`,
:mod:`.audit` and :mod:`.keys` each hold a group's typer app and commands;
:mod:`.context` holds what they share (global options, error exits). The root app that
registers them is :mod:`conveyor_cli.main`.
"""
