"""YAML written by someone else: questions files and INDEX.md front matter.

Both refuse aliases before anything is built: a "billion laughs" document
expands a few lines into exponentially many values, gigabytes before it is
done. Both use libyaml's loader where PyYAML has it: it stops at 1,000
levels of nesting, where the pure-Python one takes time quadratic in the
depth (20 s for 20,000 levels) and then recurses until Python gives up
(RecursionError, which the callers report).
"""

from __future__ import annotations


def fast_loader():
    """libyaml's safe loader where PyYAML has it, else the pure-Python one."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def first_alias(text: str, loader):
    """The mark (line and column, 0-based) of text's first alias (`*name`),
    or None; a YAML syntax error is raised as yaml.YAMLError."""
    import yaml

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            return event.start_mark
    return None
