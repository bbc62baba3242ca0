"""Program parameters in cluster.conf: no shell by the back door (rules in ``clusterd.trust``).

Two walks over a canonical tree, both returning problems located on the element, naming
the parameter and saying what to do:

* :func:`program_problems` (pure, part of every validation: ``ccs_config_validate``,
  ``conf.propose``, peers accepting a config, the modules' edit path): the value of every
  program parameter must be one plain absolute path of a program that is not a shell or
  an interpreter.
* :func:`local_problems` (file system, only where a config is proposed or checked on a
  node: ``conf.propose``/``reload`` and ``ccs_config_validate``): a named program that
  exists here must be root-owned and not writable by group or others, nor its directories.
  A program that does not exist here is not a validation problem, as a fence agent not
  installed on the machine is not: the file is cluster-wide and the controller, or a node
  that will never run the program, need not have it. It is refused, with a logged error,
  when something tries to run it (``fence.verify`` shows the fence paths it breaks).
  Peers accepting a config from the cluster do not run this check: a node must not
  reject what a quorate cluster accepted because of a local file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from lxml import etree

from clusterd import trust
from clusterd.conf.rng import RawProblem


def program_params(root: etree._Element) -> Iterator[tuple[etree._Element, str, str]]:
    """``(element, attribute, value)`` of every program parameter in the tree."""
    rm = root.find("rm")
    for el, in_rm in _marked(root, rm):
        for key, value in el.items():
            if trust.is_program_param(el.tag, key, in_rm):
                yield el, key, value


def _marked(root: etree._Element, rm: etree._Element | None
            ) -> Iterator[tuple[etree._Element, bool]]:
    """Every element of ``root`` in document order, and whether it is ``rm`` or below it
    (the subtree is walked once: no set of all its elements to ask)."""
    yield root, root is rm
    for child in root.iterchildren(etree.Element):
        in_rm = child is rm
        for el in child.iter(etree.Element):
            yield el, in_rm


def program_problems(root: etree._Element) -> list[RawProblem]:
    """Every program parameter whose value is not one plain path (pure)."""
    found = []
    for el, key, value in program_params(root):
        problem = trust.value_problem(value)
        if problem is not None:
            found.append(RawProblem(el, f"{key} {problem}"))
    return found


def local_problems(root: etree._Element) -> list[RawProblem]:
    """Program parameters naming a file on this node that root must not run (blocking:
    stat calls; run it in a thread from the event loop)."""
    found = []
    for el, key, value in program_params(root):
        if trust.value_problem(value) is not None or not os.path.exists(value):
            continue                # program_problems reports the first; see the docstring
        problem = trust.program_problem(value)
        if problem is not None:
            found.append(RawProblem(el, f"{key}={value!r} {problem}; fix the owner and mode "
                                        "(chown root, chmod go-w) or name another program"))
    return found
